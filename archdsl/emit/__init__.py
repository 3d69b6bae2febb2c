"""Outputs generated from an analysed model: diagrams and code."""
