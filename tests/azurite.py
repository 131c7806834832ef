"""Start and stop a real Azurite (Blob/Queue/Table emulator) for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    """An Azurite process on free loopback ports with its data in ``location``."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self.ports = {"blob": _free_port(), "queue": _free_port(), "table": _free_port()}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        p = self.ports
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{p['blob']}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{p['queue']}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{p['table']}/{ACCOUNT};"
        )

    def start(self) -> Azurite:
        binary = ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError("Azurite is not installed: run scripts/setup.sh")
        self.location.mkdir(parents=True, exist_ok=True)
        p = self.ports
        self.process = subprocess.Popen(
            [
                str(binary),
                "--silent",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
                "--location",
                str(self.location),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(p["blob"]),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(p["queue"]),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(p["table"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        for port in p.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("Azurite did not start") from None
                    time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.location, ignore_errors=True)
