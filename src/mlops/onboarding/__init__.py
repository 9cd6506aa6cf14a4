"""Onboarding a new data set (``mlops init``): how its file reads, what its target asks
for, and the params a first run needs."""
