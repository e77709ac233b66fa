"""The public API's resource handlers and route tables, one module per Brightpearl service."""
