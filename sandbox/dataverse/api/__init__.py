"""The parts of the Web API engine, one concern each; `sandbox.dataverse.engine.Engine` composes them."""
