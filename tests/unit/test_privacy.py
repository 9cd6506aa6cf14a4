"""The personal-data scan: names, values, checksums, masking, and the params decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.config import PrivacyConfig
from mlops.data.privacy import (
    distinct_values,
    failed,
    iban_valid,
    luhn_valid,
    mask,
    scan,
    scan_column,
)

OPEN = PrivacyConfig(drop=(), allow=(), max_values=50_000)


def text(name: str, values: list[str]) -> pd.Series:
    return pd.Series(values, dtype="str", name=name)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "jane.doe+news@mail.example.co.uk"),
        ("phone", "+44 20 7946 0958"),
        ("phone", "(555) 123-4567"),
        ("phone", "+4915112345678"),
        ("phone", "2024-01-15, call 555-123-4567"),
        ("national_id", "123-45-6789"),  # US SSN
        ("national_id", "AB 12 34 56 C"),  # UK National Insurance number
        ("payment_card", "4111 1111 1111 1111"),
        ("payment_card", "5500-0000-0000-0004"),
        ("iban", "GB82 WEST 1234 5698 7654 32"),
        ("iban", "DE89370400440532013000"),
        ("ip_address", "192.168.10.254"),
        ("ip_address", "2001:db8::8a2e:370:7334"),
    ],
)
def test_each_kind_of_personal_value_is_found(kind: str, value: str) -> None:
    finding = scan_column(text("notes", ["nothing here", f"contact: {value}"]), OPEN, 0)
    assert finding is not None
    assert kind in finding.kinds
    assert (finding.matches, finding.scanned, finding.in_name) == (1, 2, False)
    assert finding.decision == "fail"


@pytest.mark.parametrize(
    "value",
    [
        "4111 1111 1111 1112",  # a card-shaped number failing the Luhn check
        "DE89370400440532013001",  # an IBAN-shaped string failing mod 97
        "20240115123456789",  # a long numeric ID: too many digits for a phone
        "2024-01-15",
        "12:30:45",
        "v1.2.3",
        "Outlying-US(Guam-USVI-etc)",
        "Married-civ-spouse",
    ],
)
def test_lookalikes_are_not_personal_data(value: str) -> None:
    assert scan_column(text("notes", [value]), OPEN, 0) is None


def test_the_demo_data_holds_no_personal_data(adult_sample: pd.DataFrame) -> None:
    assert scan(adult_sample, OPEN, seed=0) == []


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("customer_email", "email"),
        ("e_mail", "email"),
        ("phone_number", "phone"),
        ("ssn", "national_id"),
        ("passport_no", "national_id"),
        ("credit_card", "payment_card"),
        ("iban", "iban"),
        ("client_ip", "ip_address"),
        ("ip_address", "ip_address"),
        ("email_address", "email"),
        ("name", "person_name"),
        ("customer_name", "person_name"),
        ("surname", "person_name"),
        ("username", "person_name"),
        ("home_address", "postal_address"),
        ("street", "postal_address"),
        ("date_of_birth", "birth_date"),
        ("dob", "birth_date"),
    ],
)
def test_a_telling_column_name_is_a_finding_on_its_own(name: str, kind: str) -> None:
    finding = scan_column(text(name, ["x", "y"]), OPEN, 0)
    assert finding is not None
    assert (finding.kinds, finding.in_name, finding.matches) == ((kind,), True, 0)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("phone_service", ["Yes", "No", "No", "Yes", "No"]),  # IBM's telco churn
        ("sent_email", ["0", "1", "1", "0"]),
        ("mobile", ["none", "prepaid", "contract", "none", "prepaid", "contract"]),
    ],
)
def test_a_flag_named_like_personal_data_is_not_a_finding(name: str, values: list[str]) -> None:
    assert scan_column(text(name, values), OPEN, 0) is None


@pytest.mark.parametrize(
    "values",
    [
        ["x", "y"],  # each value once: it may tell rows apart
        ["123456789", "123456789", "987654321", "987654321"],  # two people's numbers, repeated
        ["a@b", "a@b", "c@d", "c@d"],
    ],
)
def test_a_telling_name_stands_unless_its_values_are_a_flag(values: list[str]) -> None:
    finding = scan_column(text("ssn", values), OPEN, 0)
    assert finding is not None
    assert finding.in_name
    names = scan_column(text("customer_name", ["Yes", "No", "No", "Yes"]), OPEN, 0)
    assert names is not None  # a name, an address or a birthday: told by its name only


@pytest.mark.parametrize(
    "name",
    ["relationship", "shipping", "description", "zip", "hours", "product_name", "name_length"],
)
def test_ordinary_names_are_not_findings(name: str) -> None:
    assert scan_column(text(name, ["a"]), OPEN, 0) is None


def test_card_numbers_stored_as_numbers_are_found() -> None:
    cards = pd.Series([4111111111111111.0, 5500000000000004.0, 12.0], name="ref")
    finding = scan_column(cards, OPEN, 0)
    assert finding is not None
    assert (finding.kinds, finding.matches) == (("payment_card",), 2)
    ids = pd.Series([4111111111111112.0, 123456.0], name="ref")  # Luhn fails; too short
    assert scan_column(ids, OPEN, 0) is None


def test_large_amounts_are_not_card_numbers_that_pass_luhn_by_chance() -> None:
    """gapminder's GDP in dollars, whole numbers of 13 to 14 digits: one in ten passes
    the Luhn check by chance, and the column was a payment card finding."""
    gdp = pd.Series(np.random.default_rng(0).integers(10**12, 10**14, 500), name="gdp")
    assert 20 < sum(luhn_valid(str(v)) for v in gdp) < 100  # some pass, by chance
    assert scan_column(gdp.astype("float64"), OPEN, 0) is None


@pytest.mark.parametrize(
    ("config", "decision"),
    [
        (PrivacyConfig(drop=("contact",), allow=(), max_values=10), "drop"),
        (PrivacyConfig(drop=(), allow=("contact",), max_values=10), "allow"),
        (OPEN, "fail"),
    ],
)
def test_params_decide_what_a_finding_means(config: PrivacyConfig, decision: str) -> None:
    data = pd.DataFrame({"contact": text("contact", ["a@b.org"]), "n": [1.0]})
    findings = scan(data, config, seed=0)
    assert [(f.column, f.decision) for f in findings] == [("contact", decision)]
    assert bool(failed(findings)) is (decision == "fail")


def test_examples_are_masked_and_distinct() -> None:
    values = [f"person{i}@example.com" for i in range(12)]
    finding = scan_column(text("contact", values), OPEN, 0)
    assert finding is not None
    assert finding.examples == ("p******@*******.***", "p*******@*******.***")
    assert not any("example" in e or "person" in e for e in finding.examples)


def test_mask_keeps_only_shape() -> None:
    assert mask("4111 1111 1111 1111") == "4*** **** **** ****"
    assert mask(4111111111111111.0) == "4***************"


def test_large_columns_are_sampled_reproducibly() -> None:
    column = pd.Series([f"v{i}" for i in range(1000)] * 2, dtype="str")
    first = distinct_values(column, max_values=100, seed=3)
    assert len(first) == 100
    assert first.is_unique
    pd.testing.assert_series_equal(first, distinct_values(column, max_values=100, seed=3))
    assert len(distinct_values(column, max_values=5000, seed=3)) == 1000


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),
        ("4111-1111-1111-1111", True),
        ("378282246310005", True),  # American Express, 15 digits
        ("4111111111111112", False),
        ("411111111111", False),  # 12 digits: too short for a card
        ("79927398713", False),  # Luhn-valid, but 11 digits
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("DE89370400440532013000", True),
        ("de89370400440532013000", True),
        ("DE89370400440532013001", False),
        ("DE8937", False),
        ("DE89-3704-0044-0532-0130-00", False),
    ],
)
def test_iban(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid
