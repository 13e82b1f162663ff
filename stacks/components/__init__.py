"""Reusable constructs: one unit per file, keyword-only typed props, secure defaults."""
