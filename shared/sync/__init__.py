"""The record-sync engine: ports, entity specs, the engine, outcomes and in-memory fakes."""
