"""Infra checks: Bicep syntax, checkov policy, topology/trigger/settings consistency."""
