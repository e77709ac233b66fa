"""Test module with two top-level function apps (the worker refuses this)."""

import azure.functions as func

app = func.FunctionApp()
other = func.FunctionApp()
