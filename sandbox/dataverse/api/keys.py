"""Record keys: primary and alternate key syntax in URLs, lookups by key, entity references."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

from sandbox.dataverse import errors as E
from sandbox.dataverse import query as Q
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    API_PREFIX,
    LOOKUP_VALUE_RE,
    SimRequest,
)
from sandbox.dataverse.schema import Table

KEY_FORBIDDEN = set("/<>*%&:\\?+")


def duplicate_key() -> ODataError:
    """A create or upsert whose primary or alternate key another record already has."""
    return ODataError(412, E.DUPLICATE_RECORD, "A record with matching key values already exists.")


class Keys(EngineBase):
    def _parse_key(self, table: Table, text: str) -> dict[str, Any]:
        """`(guid)`, `(pk=guid)`, `(k='v')`, `(k1='a',k2=2)`, `(_x_value=guid)` -> {column: value}."""
        text = text.strip()
        if Q.GUID_RE.fullmatch(text):
            return {table.primary_id: text.lower()}
        try:
            tokens = Q.tokenize(text)
        except ODataError as exc:
            raise self._bad_key(table) from exc
        pairs: dict[str, Any] = {}
        i = 0
        while i < len(tokens):
            if (
                i + 2 >= len(tokens)
                or tokens[i].kind != "ident"
                or tokens[i + 1].kind != "punct"
                or tokens[i + 1].value != "="
            ):
                raise self._bad_key(table)
            name, tok = tokens[i].value, tokens[i + 2]
            if tok.kind not in ("str", "num", "guid", "datetime", "bool"):
                raise self._bad_key(table)
            value = tok.value
            if isinstance(value, datetime):
                value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(value, str) and KEY_FORBIDDEN & set(value):
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"Key value for '{name}' contains a character that is not supported in a key "
                    "in the request URI (one of / < > * % & : \\ ? +).",
                )
            m = LOOKUP_VALUE_RE.fullmatch(name)
            pairs[m.group(1) if m else name] = value
            i += 3
            if i < len(tokens):
                if tokens[i].kind != "punct" or tokens[i].value != ",":
                    raise self._bad_key(table)
                i += 1
        names = set(pairs)
        if names == {table.primary_id}:
            return {table.primary_id: str(pairs[table.primary_id]).lower()}
        for columns in table.alternate_keys.values():
            if names == set(columns):
                return pairs
        raise self._bad_key(table)

    def _bad_key(self, table: Table) -> ODataError:
        t = table.odata_type
        return ODataError(
            400,
            "0x80060888",
            f"The key in the request URI is not valid for resource '{t}'. Ensure that the names and "
            f"number of key properties match the declared or alternate key properties for the "
            f"resource '{t}'.",
        )

    def find(self, table: Table, key: dict[str, Any]) -> dict[str, Any] | None:
        rows = self.db.rows[table.logical_name]
        if table.primary_id in key:
            return rows.get(str(key[table.primary_id]).lower())
        rid = self.db.find_by_key(table.logical_name, key)
        return rows.get(rid) if rid is not None else None

    def existing(self, table: Table, key: dict[str, Any]) -> dict[str, Any]:
        """The record with `key`, or the 404 Dataverse answers for a missing one."""
        record = self.find(table, key)
        if record is None:
            raise self._missing(table, key)
        return record

    def _missing(self, table: Table, key: dict[str, Any]) -> ODataError:
        if table.primary_id in key:
            return ODataError(
                404, E.NOT_FOUND, f"{table.logical_name} With Id = {key[table.primary_id]} Does Not Exist"
            )
        shown = ",".join(f"{k}:{v}" for k, v in key.items())
        return ODataError(
            404,
            "0x80060891",
            f"A record with the specified key values does not exist in {table.logical_name} entity "
            f"(keys: {shown})",
        )

    def resolve_reference(self, ref: str, req: SimRequest) -> tuple[Table, dict[str, Any]]:
        """'/contacts(guid)', 'contacts(k='v')', absolute URL or '$1' -> (table, record)."""
        ref = ref.strip()
        if ref.startswith("$"):
            target = req.content_ids.get(ref)
            if target is None:
                raise E.unknown_content_id(ref)
            ref = target
        if "://" in ref:
            marker = ref.find(API_PREFIX)
            if marker == -1:
                raise ODataError(400, E.PAYLOAD_ERROR, f"The reference '{ref}' is not a valid entity URL.")
            ref = ref[marker + len(API_PREFIX) :]
        ref = unquote(ref.lstrip("/"))
        if ref.startswith(API_PREFIX.lstrip("/")):
            ref = ref[len(API_PREFIX) - 1 :]
        set_name, key_text, rest = split_resource_path(ref)
        table = self.schema.by_set.get(set_name)
        if table is None or key_text is None or rest is not None:
            raise ODataError(
                400,
                E.PAYLOAD_ERROR,
                f"Error identified in Payload provided by the user: the reference '{ref}' "
                "is not a valid entity reference.",
            )
        return table, self.existing(table, self._parse_key(table, key_text))


def split_resource_path(path: str) -> tuple[str, str | None, str | None]:
    """'contacts(k='a)b')/x' -> ('contacts', "k='a)b'", 'x'); quote-aware."""
    i = 0
    while i < len(path) and path[i] not in "(/":
        i += 1
    name = path[:i]
    key: str | None = None
    if i < len(path) and path[i] == "(":
        j = i + 1
        in_quote = False
        while j < len(path):
            ch = path[j]
            if ch == "'":
                if in_quote and j + 1 < len(path) and path[j + 1] == "'":
                    j += 2
                    continue
                in_quote = not in_quote
            elif ch == ")" and not in_quote:
                break
            j += 1
        if j >= len(path):
            raise ODataError(400, "0x80060888", f"Bad request: unbalanced parentheses in '{path}'.")
        key = path[i + 1 : j]
        i = j + 1
    rest = None
    if i < len(path):
        if path[i] != "/":
            raise E.segment_not_found(path)
        rest = path[i + 1 :] or None
    return name, key, rest
