"""Test module without a function app object."""

VALUE = 1
