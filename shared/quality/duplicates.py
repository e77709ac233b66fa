"""Duplicate matching: the same customer by normalised e-mail, likely the same by name + postcode.

A flow asks `DuplicateIndex.match(customer)` before creating a record in the other system:
- an **e-mail match** (any of the customer's e-mails equals any e-mail of a candidate after
  normalisation) is treated as the same customer: link, don't create;
- otherwise **likely duplicates** are candidates sharing a postcode (when required) whose
  full name scores at least the threshold with rapidfuzz's token-sort ratio (word order and
  case do not matter, accents are folded). They go to review instead of being created twice.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process, utils

from shared.quality.normalise import clean_text, email_match_key, postcode_match_key

if TYPE_CHECKING:
    from shared.model.customer import Customer


@dataclass(frozen=True)
class DuplicateCandidate:
    record_id: str
    score: float  # 100 for an e-mail match; rapidfuzz score (0-100) for a name match
    reason: str  # "email" or "name+postcode" / "name"


@dataclass(frozen=True)
class MatchResult:
    email_matches: tuple[DuplicateCandidate, ...] = ()
    likely: tuple[DuplicateCandidate, ...] = ()

    @property
    def linked_id(self) -> str | None:
        """The record to link to: the single e-mail match, if exactly one."""
        return self.email_matches[0].record_id if len(self.email_matches) == 1 else None

    @property
    def needs_review(self) -> bool:
        """Ambiguous e-mail matches, or no e-mail match but likely duplicates."""
        return len(self.email_matches) > 1 or (not self.email_matches and bool(self.likely))


def fold_name(text: str | None) -> str:
    """Lower-case; accents and apostrophes removed; punctuation a space: "Zoë O'Brien" -> "zoe obrien"."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch not in "'’`")
    return " ".join(utils.default_process(stripped).split())


def full_name(customer: Customer) -> str:
    return fold_name(
        clean_text(" ".join(p for p in (customer.name.first_name, customer.name.last_name) if p))
    )


def customer_emails(customer: Customer) -> set[str]:
    keys = {
        email_match_key(e)
        for e in (customer.emails.primary, customer.emails.secondary, customer.emails.tertiary)
    }
    return {k for k in keys if k}


def customer_postcodes(customer: Customer) -> set[str]:
    addresses = [customer.addresses.default, customer.addresses.billing, customer.addresses.shipping]
    if customer.organisation is not None:
        addresses.append(customer.organisation.address)
    keys = {postcode_match_key(a.postcode) for a in addresses if a is not None}
    return {k for k in keys if k}


@dataclass
class DuplicateIndex:
    """Candidates of one system, indexed for e-mail lookups and postcode-blocked fuzzy names."""

    name_threshold: float = 88.0
    require_postcode: bool = True
    max_candidates: int = 5
    _by_email: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _by_postcode: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    _names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        candidates: Iterable[tuple[str, Customer]],
        *,
        name_threshold: float = 88.0,
        require_postcode: bool = True,
        max_candidates: int = 5,
    ) -> DuplicateIndex:
        index = cls(
            name_threshold=name_threshold, require_postcode=require_postcode, max_candidates=max_candidates
        )
        for record_id, customer in candidates:
            index.add(record_id, customer)
        return index

    def add(self, record_id: str, customer: Customer) -> None:
        for email in customer_emails(customer):
            self._by_email[email].add(record_id)
        name = full_name(customer)
        if not name:
            return
        self._names[record_id] = name
        for postcode in customer_postcodes(customer):
            self._by_postcode[postcode][record_id] = name

    def match(self, customer: Customer, *, exclude: Iterable[str] = ()) -> MatchResult:
        excluded = set(exclude)
        email_ids: set[str] = set()
        for email in customer_emails(customer):
            email_ids |= self._by_email.get(email, set())
        email_ids -= excluded
        if email_ids:
            return MatchResult(
                email_matches=tuple(DuplicateCandidate(rid, 100.0, "email") for rid in sorted(email_ids))
            )
        name = full_name(customer)
        if not name:
            return MatchResult()
        pool: dict[str, str] = {}
        if self.require_postcode:
            for postcode in customer_postcodes(customer):
                pool.update(self._by_postcode.get(postcode, {}))
            reason = "name+postcode"
        else:
            pool = dict(self._names)
            reason = "name"
        for rid in excluded:
            pool.pop(rid, None)
        if not pool:
            return MatchResult()
        scored = process.extract(
            name,
            pool,
            scorer=fuzz.token_sort_ratio,
            processor=None,
            score_cutoff=self.name_threshold,
            limit=self.max_candidates,
        )
        likely = tuple(
            DuplicateCandidate(record_id=str(key), score=round(float(score), 1), reason=reason)
            for _, score, key in sorted(scored, key=lambda item: (-item[1], str(item[2])))
        )
        return MatchResult(likely=likely)


def find_duplicates(
    customer: Customer,
    candidates: Iterable[tuple[str, Customer]],
    *,
    name_threshold: float = 88.0,
    require_postcode: bool = True,
    max_candidates: int = 5,
) -> MatchResult:
    """One-off match of `customer` against `candidates` ((record id, Customer) pairs)."""
    index = DuplicateIndex.build(
        candidates,
        name_threshold=name_threshold,
        require_postcode=require_postcode,
        max_candidates=max_candidates,
    )
    return index.match(customer)
