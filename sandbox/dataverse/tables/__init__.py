"""Table behaviours beyond the schema (roll-ups, actions), one module per table family."""
