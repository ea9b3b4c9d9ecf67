"""Helpers shared by the test tiers (plain modules: the conftests hold fixtures only)."""
