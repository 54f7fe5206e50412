"""Helpers shared by the test files (the tests import these, never each other): the BCG trials, the crafted
report and the tables of bad input."""
