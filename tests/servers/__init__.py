"""Local servers for tests: start in-process on a free 127.0.0.1 port, record every request.

- :class:`OpenAICompatServer`: chat completions (plain and streamed, with usage), images,
  models; deterministic replies. ``srv.base_url`` is what an OpenAI client takes.
- :class:`EchoHTTPServer`: a generic HTTP server (echo, redirects, big bodies, flaky and
  slow routes) for HTTP clients.
- :class:`LocalServer`: their base, to build others on: ``fail_next``, ``set_delay``,
  ``route``, ``requests``, ``arrivals``, context manager.

Use them as context managers or through a fixture::

    @pytest.fixture
    def openai_server():
        with OpenAICompatServer() as srv:
            yield srv
"""

from __future__ import annotations

from tests.servers.base import LocalServer, RecordedRequest, Reply
from tests.servers.http_echo import EchoHTTPServer
from tests.servers.openai_compat import OpenAICompatServer

__all__ = ["EchoHTTPServer", "LocalServer", "OpenAICompatServer", "RecordedRequest", "Reply"]
