"""Tests of the framework adapters, each run in its adapter's own environment."""
