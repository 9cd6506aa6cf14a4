"""Data: reading users' files into the raw data set, the split, and the data tests
(contract, quality, personal data, feature signal).
"""
