"""Mapping suggestions and schema drift (issue 16 item 5): explainable, no external service.

- `fields`: both systems' field definitions (Brightpearl custom-field-meta-data, Dataverse
  EntityDefinitions/Attributes) as one `FieldInfo` shape with a common kind;
- `profile`: value profiles of sampled records (pattern, cardinality, values);
- `scoring`: the evidence for a pair (name similarity, type compatibility, values) and its
  confidence;
- `propose`: the one-to-one proposal for the fields the mapping leaves out, as mapping YAML
  lines with their evidence, inserted into the mapping file's text and checked like
  `syncctl mapping check`;
- `read`: reads both schemas and samples records in bulk through the clients;
- `drift`: the scheduled schema check (custom fields added on either side that the mapping
  ignores), its stored report and custom events.
"""
