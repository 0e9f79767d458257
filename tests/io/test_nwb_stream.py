"""Remote NWB files: streamed over HTTP from a local server, and a clear error without the extra."""

from __future__ import annotations

import builtins
import functools
import hashlib
import http.server
import re
import sys
import threading

import numpy as np
import pytest

from neuroana.io import (
    NWBError,
    StreamingUnavailableError,
    list_contents,
    read_spike_counts,
    read_spike_times,
)

PHY = "pynapple_phy_A8604-211122.nwb"


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (what remfile and fsspec use to read parts)."""

    def log_message(self, *args):
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()  # noqa: SIM115 - small test files
        except OSError:
            self.send_error(404)
            return None
        m = re.match(r"bytes=(\d+)-(\d*)", rng or "")
        if m:
            start = int(m.group(1))
            stop = min(int(m.group(2)) + 1 if m.group(2) else len(data), len(data))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
            body = data[start:stop]
        else:
            self.send_response(200)
            body = data
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io

        return io.BytesIO(body)


@pytest.fixture(scope="module")
def server(nwb_dir):
    handler = functools.partial(RangeHandler, directory=str(nwb_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _block_imports(monkeypatch, names):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r} (blocked by test)")
        return real_import(name, *args, **kwargs)

    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_stream_extra_names_the_install_command(monkeypatch):
    _block_imports(monkeypatch, {"remfile", "fsspec"})
    url = "https://dandiarchive.example/session.nwb"
    with pytest.raises(StreamingUnavailableError, match=r"pip install neuroana\[stream\]") as e:
        read_spike_times(url)
    assert isinstance(e.value, ImportError) and url in str(e.value)


def _check_phy(url, nwb_dir):
    local = read_spike_times(nwb_dir / PHY)
    remote = read_spike_times(url)
    assert list(remote) == [6, 191, 206]
    for uid in local:
        np.testing.assert_array_equal(remote[uid], local[uid])
    counts = read_spike_counts(url, 10.0)
    assert counts.sum("time").values.tolist() == [11020, 4690, 5644]
    assert counts.attrs["source_file"] == url
    assert "/units" in set(list_contents(url)["path"])


def test_stream_through_remfile(server, nwb_dir):
    pytest.importorskip("remfile")
    before = hashlib.sha256((nwb_dir / PHY).read_bytes()).hexdigest()
    _check_phy(f"{server}/{PHY}", nwb_dir)
    assert hashlib.sha256((nwb_dir / PHY).read_bytes()).hexdigest() == before


def test_stream_through_fsspec(server, nwb_dir, monkeypatch):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")  # fsspec's http implementation
    _block_imports(monkeypatch, {"remfile"})  # force the fsspec path
    _check_phy(f"{server}/{PHY}", nwb_dir)


def test_remote_missing_file_is_an_nwb_error(server):
    pytest.importorskip("remfile")
    with pytest.raises(NWBError, match=r"127\.0\.0\.1.*missing\.nwb"):
        read_spike_times(f"{server}/missing.nwb")
