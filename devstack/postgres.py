"""A throwaway PostgreSQL on 127.0.0.1 from the Debian package, in a temporary data directory.

initdb refuses to run as root, so the server runs as the `postgres` system user the package made.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import free_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise FileNotFoundError("PostgreSQL server not installed: run `make setup`")
    return Path(found[-1]).parent


@dataclass
class PostgresServer:
    port: int = field(default_factory=free_port)
    user: str = "voicegw"
    database: str = "voicegw"
    _dir: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_postgres(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True)

    def start(self) -> None:
        bin_dir = _bin_dir()
        self._dir = Path(tempfile.mkdtemp(prefix="voicegw-pg-"))
        data = self._dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self._dir, "postgres", "postgres")
        self._as_postgres(
            str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", self.user, "-E", "UTF8"
        )
        self.revive()
        deadline = time.monotonic() + 20
        while True:
            try:
                self._as_postgres(
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    self.user,
                    self.database,
                )
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        """Stops the server at once (`-m immediate`: every connection cut, no checkpoint), as a
        crashed database host would; `revive()` starts it again on the same port and data."""
        if self._dir is None:
            return
        data = self._dir / "data"
        if data.exists():
            subprocess.run(
                [
                    *(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
                    str(_bin_dir() / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "immediate",
                    "stop",
                ],
                capture_output=True,
            )

    def revive(self) -> None:
        assert self._dir is not None, "revive() follows kill(), not stop()"
        self._as_postgres(
            str(_bin_dir() / "pg_ctl"),
            "-D",
            str(self._dir / "data"),
            "-l",
            str(self._dir / "postgres.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        if self._dir is None:
            return
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
