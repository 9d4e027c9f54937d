"""bureau installed as the Dockerfile installs it (R90): a wheel, not editable, into an environment of
its own; it migrates, serves GraphiQL's files and passes the image's health check. Then the Dockerfile,
.dockerignore and compose.yaml are read for what no Docker engine here can run."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from tests.api.test_metrics import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with bureau's wheel in it; its dependencies are this environment's (one
    .pth line, which does not bring this checkout's editable install along). Returns its python."""
    folder = tmp_path_factory.mktemp("installed")
    # From a copy as the image's build context has it (.dockerignore), never a stale build/ of the checkout.
    source = folder / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "bench", "tests",
        "bureau.db*"))
    wheels = folder / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
                            str(source)], capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True, timeout=60)
    python = folder / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("bureau-*.whl"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", purelib,
                           str(wheel)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return python


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BUREAU_ISSUER")}
    return {**inherited, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}", **extra}


async def test_the_installed_wheel_migrates_serves_graphiql_and_is_healthy(installed: Path, tmp_path: Path) -> None:
    run = subprocess.run  # blocking, but nothing else runs in this test meanwhile
    where = (await asyncio.to_thread(run, [str(installed), "-c", "import cli; print(cli.__file__)"], cwd=tmp_path,
                                     env=environment(tmp_path), capture_output=True, text=True, check=True)).stdout
    assert not where.startswith(str(ROOT)), "the checkout, not the installed copy, was imported"
    migrated = await asyncio.to_thread(run, [str(installed), "-m", "cli", "migrate"], cwd=tmp_path,
                                       env=environment(tmp_path), capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr

    port = free_port()
    env = environment(tmp_path, PORT=str(port))
    check = [str(installed), "-m", "web.healthcheck"]
    down = await asyncio.to_thread(run, check, env=env, capture_output=True, timeout=30)
    assert down.returncode == 1  # nothing serves yet
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        # As the image's CMD: no --port, PORT says it.
        process = await asyncio.create_subprocess_exec(str(installed), "-m", "cli", "serve", cwd=tmp_path, env=env,
                                                       stdout=sink, stderr=sink)
    try:
        for _ in range(240):
            healthy = await asyncio.to_thread(subprocess.run, check, env=env, capture_output=True, timeout=30)
            if healthy.returncode == 0:
                break
            assert process.returncode is None, log.read_text(errors="replace")
            await asyncio.sleep(0.25)
        else:
            raise AssertionError(log.read_text(errors="replace"))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "/graphiql/graphiql.min.js" in page.text
            script = await http.get("/graphiql/graphiql.min.js")
            assert script.status_code == 200 and len(script.content) > 1_000_000
    finally:
        process.terminate()
        await process.wait()


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_installs_dependencies_first_the_project_not_editable_and_checks_readyz() -> None:
    steps = instructions()
    runs = [args for keyword, args in steps if keyword == "RUN"]
    copies = [args for keyword, args in steps if keyword == "COPY"]
    dependencies = next(i for i, step in enumerate(steps) if step[0] == "RUN" and "requirements.txt" in step[1])
    sources = next(i for i, step in enumerate(steps) if step == ("COPY", ". /src"))
    assert dependencies < sources, "the dependency layer must not depend on the sources"
    assert [c for c in copies if steps.index(("COPY", c)) < dependencies and "pyproject.toml" not in c
            and "--from" not in c and "package" not in c] == []
    assert any("pip install --no-deps /src" in run for run in runs)
    assert not any(re.search(r"pip install[^&]*\s-e\b", run) for run in runs)
    healthcheck = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    assert len(healthcheck) == 1
    command = json.loads(healthcheck[0].split("CMD", 1)[1])
    assert command == ["python", "-m", "web.healthcheck"]  # the command the test above runs
    assert "readyz" in (ROOT / "web" / "healthcheck.py").read_text()
    # The dependency step reads pyproject.toml's dependencies, all of them.
    snippet = re.search(r'python -c "(.*?)"', runs[1] if "requirements" in runs[1] else runs[0])
    assert snippet is not None
    # As the shell hands it over: inside double quotes, \n stays a backslash and an n for Python.
    listed = subprocess.run([sys.executable, "-c", snippet.group(1).replace("/src/pyproject.toml", "pyproject.toml")],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert listed.split() == expected


def test_dockerignore_and_compose() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "web/graphiql/node_modules", "bureau.db"} <= ignored
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose["services"]["api"]["restart"] == "unless-stopped"
    assert compose["services"]["db"]["restart"] == "unless-stopped"
