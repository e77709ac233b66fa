"""Dataverse `@odata.nextLink` paging: one paginator object for queries and change tracking.

A page's `@odata.nextLink` is followed verbatim with the first request's headers (the Prefer
header carries `odata.maxpagesize` / `odata.track-changes`, reference §3.8 and §6); its
parameters are inside the link. Every returned link (nextLink, deltaLink) is checked to lie
under the client's service root before it is followed or handed on (DataverseForeignLink), and
a nextLink seen twice stops the loop instead of paging forever.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

import httpx

from shared.dataverse.errors import DataverseError


class LinkFollower(Protocol):
    """What the paginator needs from the client (shared.dataverse.client.DataverseClient)."""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response: ...

    def check_link(self, link: str, *, what: str = "link") -> None: ...


@dataclass
class NextLinkPaginator:
    """Iterate the JSON bodies of a paged GET; `delta_link` is the last page's deltaLink.
    `what` names the query in errors ("the query on contacts")."""

    client: LinkFollower
    path: str
    _: KW_ONLY
    what: str
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    delta_link: str | None = field(default=None, init=False)
    pages_fetched: int = field(default=0, init=False)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        url: str | None = self.path
        params = self.params
        seen: set[str] = set()
        while url is not None:
            body = self.client.request("GET", url, params=params, headers=self.headers).json()
            self.pages_fetched += 1
            next_link = body.get("@odata.nextLink") or None
            delta_link = body.get("@odata.deltaLink") or None
            for link, name in ((next_link, "@odata.nextLink"), (delta_link, "@odata.deltaLink")):
                if link:
                    self.client.check_link(link, what=f"{name} of {self.what}")
            self.delta_link = delta_link or self.delta_link
            yield body
            if next_link in seen:
                raise DataverseError(f"{self.what} returned the same nextLink twice")
            if next_link:
                seen.add(next_link)
            url, params = next_link, None
