"""Personal data scan: column names and values that look like e-mail addresses,
phone numbers, national IDs, payment cards, IBANs or IP addresses, and column names
of people's names, postal addresses and birth dates.

Values are scanned once per distinct value (a category column of a million
rows has a few dozen), with vectorised regular expressions; a column with more
distinct values than ``max_values`` is scanned on a seeded sample of them.
Card numbers must pass the Luhn check and IBANs their mod-97 check, so long
numeric IDs are not taken for cards. Examples are masked: a report must not
leak what it found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops.config import PrivacyConfig

Decision = Literal["fail", "drop", "allow"]

EXAMPLES = 3
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_HEX = r"[0-9A-Fa-f]{1,4}"
# RE2-compatible (pandas runs them with pyarrow on text columns): no look-arounds.
VALUE_PATTERNS: Mapping[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "phone": (
        r"\+\d{8,15}\b"
        r"|(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\b\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b"
    ),
    "national_id": r"\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
    "payment_card": r"\b(?:\d[ -]?){12,18}\d\b",
    "iban": r"\b[A-Z]{2}\d{2} ?(?:[A-Z0-9]{4} ?){2,7}[A-Z0-9]{1,4}\b",
    "ip_address": (
        rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b"
        rf"|\b(?:{_HEX}:){{7}}{_HEX}\b|\b{_HEX}(?::{_HEX}){{0,6}}::(?:{_HEX}(?::{_HEX}){{0,6}})?"
    ),
}
# Column names, as snake_case tokens ("customer_email", "ssn", "ip_addr").
NAME_PATTERNS: Mapping[str, re.Pattern[str]] = {
    kind: re.compile(rf"(?:^|_)(?:{words})(?:_|$)")
    for kind, words in {
        "email": r"e_?mail",
        "phone": r"phone|telephone|mobile|fax",
        "national_id": r"ssn|social_security|national_id|passport|nino|tax_id|id_card",
        "payment_card": r"credit_card|card_number|card_no|cc_number",
        "iban": r"iban|bank_account|account_number",
        "ip_address": r"ip|ip_address|ip_addr|ipv4|ipv6",
        # Told by the name only: no pattern tells a name, an address or a birthday from
        # other text or dates. A bare "name" is a person's in most tables (Titanic's).
        "person_name": (
            r"^name$|first_?name|last_?name|surname|full_?name|given_?name|family_?name"
            r"|forename|maiden_?name|(?:customer|client|patient|user|person|employee|contact"
            r"|holder|owner|member|student|passenger|applicant|borrower)_?name"
        ),
        "postal_address": r"(?<!ip_)(?<!mac_)(?<!mail_)address|street|home_addr",
        "birth_date": r"dob|date_of_birth|birth_?date|birthday",
    }.items()
}
_DIGITS = re.compile(r"\D")
_DIGIT_RUN = r"\+?\(?\d[\d ().-]{5,}\d"


@dataclass(frozen=True)
class Finding:
    """Personal data found in one column, and what params.yaml says to do with it."""

    column: str
    kinds: tuple[str, ...]
    in_name: bool
    matches: int
    scanned: int
    examples: tuple[str, ...]
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"kinds": list(self.kinds), "examples": list(self.examples)}


def scan(frame: pd.DataFrame, config: PrivacyConfig, seed: int) -> list[Finding]:
    """A finding for every column whose name or values look like personal data."""
    findings = []
    for name in frame.columns:
        finding = scan_column(frame[name], config, seed)
        if finding is not None:
            findings.append(finding)
    return findings


def scan_column(column: pd.Series, config: PrivacyConfig, seed: int) -> Finding | None:
    name = str(column.name)
    name_kinds = [kind for kind, pattern in NAME_PATTERNS.items() if pattern.search(name)]
    values = distinct_values(column, config.max_values, seed)
    if _a_flag(column, values):
        name_kinds = [kind for kind in name_kinds if kind not in VALUE_PATTERNS]
    hits = _numeric_hits(values) if _is_numeric(column) else _text_hits(values)
    matched = np.logical_or.reduce(list(hits.values())) if hits else np.zeros(0, dtype=bool)
    kinds = sorted({*name_kinds, *(k for k, mask in hits.items() if mask.any())})
    if not kinds:
        return None
    decision: Decision = (
        "drop" if name in config.drop else "allow" if name in config.allow else "fail"
    )
    return Finding(
        column=name,
        kinds=tuple(kinds),
        in_name=bool(name_kinds),
        matches=int(matched.sum()),
        scanned=len(values),
        examples=_examples(values[matched]),
        decision=decision,
    )


# A column named for a kind its values would show ("phone_service", "sent_email") holding
# a handful of values, each shared by rows, none with an "@" or more than 3 digits
# (Yes/No, 0/1, "Fiber optic"), is a flag or a category about one: it tells no one apart.
_FLAG_VALUES = 20
_FLAG_DIGITS = 3


def _a_flag(column: pd.Series, values: pd.Series) -> bool:
    if len(values) > _FLAG_VALUES or column.count() < 2 * len(values):
        return False
    text = values.astype("str")
    return not (text.str.contains("@").any() or text.str.count(r"\d").gt(_FLAG_DIGITS).any())


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def distinct_values(column: pd.Series, max_values: int, seed: int) -> pd.Series:
    """The column's distinct values, or a seeded sample of ``max_values`` of them."""
    values = pd.Series(column.dropna().unique())
    if len(values) > max_values:
        values = values.sample(n=max_values, random_state=seed)
    return values.reset_index(drop=True)


def _text_hits(values: pd.Series) -> dict[str, np.ndarray]:
    text = values.astype("str")
    hits = {kind: _contains(text, pattern) for kind, pattern in VALUE_PATTERNS.items()}
    for kind, (extract, valid) in _CONFIRM.items():
        hits[kind] = _confirmed(text, hits[kind], extract, valid)
    return hits


def _contains(text: pd.Series, pattern: str) -> np.ndarray:
    return text.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)


def _confirmed(
    text: pd.Series, candidates: np.ndarray, extract: str, valid: Callable[[str], bool]
) -> np.ndarray:
    """Keep the candidates holding a piece of text that passes the check."""
    if not candidates.any():
        return candidates
    found = text[candidates].reset_index(drop=True).str.extractall(f"({extract})")[0]
    passing = found.map(valid).groupby(level=0).any()
    confirmed = candidates.copy()
    confirmed[candidates] = passing.reindex(range(int(candidates.sum())), fill_value=False)
    return confirmed


# Card numbers stored as numbers all pass the Luhn check; any whole numbers of 13 to 19
# digits pass it one time in ten (gapminder's GDP in dollars: 1.2e13). A column is one
# of cards when nearly all its candidates pass.
_LUHN_SHARE = 0.9


def _numeric_hits(values: pd.Series) -> dict[str, np.ndarray]:
    """Card numbers stored as numbers (ingest turns all-digit text into float64)."""
    numbers = values.to_numpy(dtype="float64")
    candidates = np.isfinite(numbers) & (numbers >= 1e12) & (numbers < 1e19)
    candidates &= numbers == np.round(numbers)
    confirmed = candidates.copy()
    confirmed[candidates] = [luhn_valid(str(int(v))) for v in numbers[candidates]]
    if confirmed.sum() < _LUHN_SHARE * candidates.sum():
        confirmed[:] = False
    return {"payment_card": confirmed}


def phone_valid(run: str) -> bool:
    """A run of digits and separators short enough to dial: E.164 numbers have 7-15 digits
    (a card number's 16 digits in groups of four is not a phone number)."""
    return 7 <= len(_DIGITS.sub("", run)) <= 15


def luhn_valid(text: str) -> bool:
    """A 13-19 digit number whose Luhn checksum holds (what every payment card carries)."""
    digits = [int(d) for d in _DIGITS.sub("", text)]
    if not 13 <= len(digits) <= 19:
        return False
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616: move the country code and check digits to the end, read letters as
    10-35, and the number mod 97 must be 1."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _examples(values: pd.Series) -> tuple[str, ...]:
    """A few distinct masked examples (many e-mails mask alike)."""
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(mask(value))
        if len(seen) == EXAMPLES:
            break
    return tuple(seen)


# How a candidate is confirmed: the text to extract from it, and the check it must pass.
_CONFIRM: Mapping[str, tuple[str, Callable[[str], bool]]] = {
    "phone": (_DIGIT_RUN, phone_valid),
    "payment_card": (VALUE_PATTERNS["payment_card"], luhn_valid),
    "iban": (VALUE_PATTERNS["iban"], iban_valid),
}


def mask(value: object) -> str:
    """Keep the first character and the punctuation, hide every other letter and digit."""
    text = _value_text(value)
    return text[:1] + re.sub(r"[A-Za-z0-9]", "*", text[1:])


def _value_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.decision == "fail"]
