"""The ML Test Score self-audit (Breck, Cai, Nielsen, Salib, Sculley 2017).

``evidence`` reads what the repository holds and what ran, once; ``rubric`` states
the 28 tests, each a pure function of that evidence scoring 0, 0.5 or 1;
``report`` sums them per section and writes audit.json and audit.md.
"""
