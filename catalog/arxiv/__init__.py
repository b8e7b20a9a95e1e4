"""arXiv metadata for the papers the catalog has seen: polite fetching, caching, offline safety.

Every arXiv id found in a post is a `Paper` row, pending until its metadata is fetched.
`sync` asks the arXiv API for the pending ids in batches of up to 100 (``id_list``),
keeping to arXiv's terms of use (one connection, at least 3 s between requests, a
User-Agent that says who is asking). A fetched paper is cached for good: its row says
ok, withdrawn, not_found or error (`PaperStatus`), and only ``--refresh`` asks again.
arXiv categories become tags (``cs.CL`` -> ``cs.cl``, origin ``arxiv-category``) on the
paper and on every post discussing it, and those posts' search text is rebuilt so a
search for words of the paper's title finds them.

The modules, each with one job:

- `transport`: HTTP (timeouts, pacing, backoff, Retry-After, a bounded DNS lookup);
  says there why the `arxiv` package's `Client` is not used for the request path;
- `feed`: an Atom response as `arxiv.Result` objects, strictly parsed;
- `client`: an `arxiv.Search` as paged API requests;
- `meta`: a `Result` as the values of a `paper` row;
- `store`: those rows, their category tags and the posts linking them, in the catalog;
- `syncer` (`sync`) and `adder` (`add`): the two operations the CLI offers.

Only the `arxiv` package's public API is used (`Search`, `Result`, `Result.Author`,
`Result.Link`).
"""

from catalog.arxiv.adder import add, parse_add_args
from catalog.arxiv.client import ArxivClient, query_url
from catalog.arxiv.errors import ArxivResponseError, NetworkDown
from catalog.arxiv.feed import ParsedPage, parse_feed
from catalog.arxiv.meta import PaperMeta, category_tag, paper_meta, split_version
from catalog.arxiv.store import store_papers
from catalog.arxiv.syncer import SyncReport, sync
from catalog.arxiv.transport import API_URL_ENV, DEFAULT_API_URL, MAX_BATCH, USER_AGENT, ClientConfig, Transport

__all__ = [
    "API_URL_ENV", "DEFAULT_API_URL", "MAX_BATCH", "USER_AGENT",
    "ArxivClient", "ArxivResponseError", "ClientConfig", "NetworkDown", "PaperMeta", "ParsedPage", "SyncReport",
    "Transport", "add", "category_tag", "paper_meta", "parse_add_args", "parse_feed", "query_url", "split_version",
    "store_papers", "sync",
]
