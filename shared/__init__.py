"""The integration core: importable without Azure Functions (DESIGN §4)."""

__version__ = "0.1.0"
