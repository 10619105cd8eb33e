"""The MLflow tracking URI: its forms, and whether the store behind it can be used.

`hpo sweep` checks its URI before Ray starts (a SQLite file that can be created and kept, a
server that answers MLflow's API within seconds), `hpo resume` and `hpo confirm` the one their
record names, and `hpo report` the store it logs into. A record's URI is checked for its form
only (no I/O) when the record is read: the folder may come from someone else.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

# MLflow stores other than SQLite; `postgresql+psycopg2://` counts as postgresql.
TRACKING_SCHEMES = ("http", "https", "file", "postgresql", "mysql", "mssql", "databricks")


ALLOWED = "sqlite:///mlflow.db, http://127.0.0.1:5000, file:///abs/path, postgresql://..."


def form_problem(uri: str) -> str | None:
    """What is wrong with the form of a tracking URI, or None; nothing is read or asked."""
    scheme, sep, rest = uri.partition("://")
    if not 0 < len(uri) <= 2000 or not uri.isprintable():
        return f"{uri[:80]!r} is not an MLflow tracking URI ({ALLOWED})"
    if scheme == "sqlite" and sep:
        return _sqlite_form(uri, rest)
    if uri == "databricks" or (sep and scheme.split("+")[0] in TRACKING_SCHEMES):
        return None
    return f"{uri!r} is not an MLflow tracking URI ({ALLOWED})"


def check_tracking_uri(uri: str) -> str | None:
    """What is wrong with a tracking URI, caught before Ray starts; None if it is usable: a
    SQLite file that can be created and kept, a server that answers within seconds."""
    if (problem := form_problem(uri)) is not None:
        return (
            f"--tracking-uri: {problem}" if problem.startswith("'") else f"--tracking-uri {problem}"
        )
    scheme, _, rest = uri.partition("://")
    if scheme == "sqlite":
        return _check_sqlite(uri, rest)
    if scheme in ("http", "https"):
        return _check_reachable(uri)
    return None


def _sqlite_form(uri: str, rest: str) -> str | None:
    if not rest:
        return f"{uri} is an in-memory store: every run would be lost at exit (a file: sqlite:///mlflow.db)"
    if not rest.startswith("/"):
        return f"{uri} names a host, not a file (three slashes: sqlite:///{rest})"
    if not Path(rest.removeprefix("/")).name:
        return f"{uri} names a folder, not a database file (sqlite:///mlflow.db)"
    return None


def _check_sqlite(uri: str, rest: str) -> str | None:
    # sqlite:///relative.db or sqlite:////absolute.db
    path = Path(rest.removeprefix("/")).expanduser()
    if path.is_dir():
        return f"--tracking-uri {uri} names a folder, not a database file (sqlite:///mlflow.db)"
    if not path.parent.is_dir():
        return f"--tracking-uri {uri}: folder {path.parent} does not exist"
    try:  # SQLite writes its journal beside the file: the folder must take new files
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as e:
        return f"--tracking-uri {uri}: folder {path.parent} is not writable ({e.strerror})"
    return None


TRACKING_TIMEOUT_S = 5.0
# An MLflow API call any server answers with JSON, a server of any other kind does not.
MLFLOW_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


def _check_reachable(uri: str) -> str | None:
    """The server must answer MLflow's API with JSON within TRACKING_TIMEOUT_S in all (urllib's
    timeout bounds each read: a server that trickles a byte a second would hold it forever)."""
    from tune.core.deadline import within

    answered, problem = within(TRACKING_TIMEOUT_S, lambda: _ask_mlflow(uri))
    if not answered:
        return (
            f"--tracking-uri {uri} did not answer within {TRACKING_TIMEOUT_S:g} s; "
            "start the server or check the address"
        )
    return problem


def _ask_mlflow(uri: str) -> str | None:
    request = urllib.request.Request(f"{uri.rstrip('/')}{MLFLOW_PROBE}", headers=_auth_headers())
    try:
        with urllib.request.urlopen(request, timeout=TRACKING_TIMEOUT_S) as answer:
            body = answer.read(1_000_000)
    except urllib.error.HTTPError as e:
        return (
            f"--tracking-uri {uri} answered MLflow's API with HTTP {e.code} ({e.reason}): not an "
            "MLflow server, or one that wants credentials (MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN)"
        )
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return (
            f"--tracking-uri {uri} cannot be reached within {TRACKING_TIMEOUT_S:g} s ({reason}); "
            "start the server or check the address"
        )
    try:
        if isinstance(json.loads(body), dict):
            return None
    except ValueError:
        pass
    return (
        f"--tracking-uri {uri} answers, but not as an MLflow server (no JSON from {MLFLOW_PROBE})"
    )


def _auth_headers() -> dict[str, str]:
    """The credentials MLflow's own client would send, from the same variables."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


def absolute_tracking_uri(uri: str) -> str:
    """sqlite:///mlflow.db names a file relative to where `hpo` runs; the sweep records it as
    an absolute path, so that `hpo resume` from another folder finds the same store."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).expanduser().absolute()}"
    return uri
