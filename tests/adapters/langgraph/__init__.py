"""Tests of tether-langgraph (run with the adapter's environment; see its README)."""
