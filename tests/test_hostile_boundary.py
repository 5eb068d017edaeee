"""The CLI's last resort and its one output writer, tested directly:

- an exception no check anticipated still prints one `error:` line saying what was being
  done and how to see the traceback (`--debug` / MMTOK_DEBUG=1), exits 1, and removes the
  output folders the run created;
- `atomic_write` / `replace_directory` / `make_dirs` turn an output path that is a file, a
  folder, a read-only place or a full disk into one MmtokError naming the path, leaving no
  temp file and no empty folder;
- JSON nesting is bounded; the audio container checks read real WAV / OGG structure.
"""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from conftest import files_under
from hostile import disk_full, make_fifo, read_only_place

from mmtok.cli.main import main, run
from mmtok.errors import MmtokError
from mmtok.files import atomic_write, make_dirs, parse_json, read_json, remove_created_dirs, replace_directory


@pytest.fixture
def exploding_command(tmp_path):
    """A command that creates an output folder, then hits an unforeseen bug (ZeroDivisionError)."""
    @click.command("explode")
    def explode() -> None:
        make_dirs(tmp_path / "made" / "by" / "run")
        (tmp_path / "made" / "by" / "run").rmdir()  # even a folder emptied again: created, so removed
        make_dirs(tmp_path / "made" / "by" / "run")
        print(1 / 0)

    main.add_command(explode)
    yield tmp_path
    main.commands.pop("explode")


def test_unexpected_error_is_one_line_with_a_way_to_see_more(exploding_command, capsys, monkeypatch):
    monkeypatch.setenv("MMTOK_DEBUG", "0")  # (restored after the test: --debug sets it)
    assert run(["explode"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: unexpected ZeroDivisionError while running `mmtok explode`")
    assert "--debug" in lines[0] and "MMTOK_DEBUG=1" in lines[0]
    assert files_under(exploding_command) == [] and not (exploding_command / "made").exists()


def test_debug_shows_the_traceback(exploding_command, capsys, monkeypatch):
    monkeypatch.setenv("MMTOK_DEBUG", "0")  # (restored after the test: --debug sets it)
    assert run(["--debug", "explode"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and err.count("error: ") == 1
    assert not (exploding_command / "made").exists()
    monkeypatch.setenv("MMTOK_DEBUG", "1")  # the environment variable does the same
    assert run(["explode"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_usage_errors_are_one_line_with_status_1(capsys):
    assert run(["encode", "x.png", "-t", "tok", "-o", "out", "--batch-size", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Invalid value for '--batch-size'") and "mmtok encode --help" in err[0]


# -- the one output writer -----------------------------------------------------------------------
def test_atomic_write_onto_a_folder_names_it_and_leaves_nothing(tmp_path):
    (tmp_path / "out.bin").mkdir()
    with pytest.raises(MmtokError, match="out.bin: is a folder"):
        atomic_write(tmp_path / "out.bin", lambda tmp: tmp.write_bytes(b"x"))
    assert files_under(tmp_path) == []


def test_atomic_write_below_a_file_names_the_file(tmp_path):
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(MmtokError, match="blocker: is a file where a folder is needed"):
        atomic_write(tmp_path / "blocker" / "a" / "out.bin", lambda tmp: tmp.write_bytes(b"x"))


def test_read_only_place_is_one_line():
    with pytest.raises(MmtokError, match=str(read_only_place())):
        atomic_write(read_only_place() / "x.bin", lambda tmp: tmp.write_bytes(b"x"))
    with pytest.raises(MmtokError, match="cannot write"):
        replace_directory(read_only_place() / "folder", lambda tmp: None)


def test_failed_writer_removes_its_temp_file_and_the_folders_it_made(tmp_path):
    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(MmtokError, match="deep/out.bin: cannot write: the disk is full"):
        atomic_write(tmp_path / "new" / "deep" / "out.bin", fail)
    assert files_under(tmp_path) == []
    remove_created_dirs()  # what the CLI and Transaction do on failure
    assert list(tmp_path.iterdir()) == []


def test_a_really_full_file_system_is_one_line(tmp_path):
    """Writes past RLIMIT_FSIZE fail for real (EFBIG), in safetensors' Rust writer too."""
    script = (
        "import torch, safetensors.torch, sys\n"
        "from pathlib import Path\n"
        "from mmtok.files import atomic_write\n"
        "from mmtok.errors import MmtokError\n"
        "try:\n"
        "    atomic_write(Path(sys.argv[1]), lambda t: safetensors.torch.save_file({'x': torch.zeros(10000)}, t))\n"
        "except MmtokError as e:\n"
        "    print(e)\n"
    )
    out = tmp_path / "w.safetensors"
    result = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120,
                            preexec_fn=disk_full(4096))
    assert "w.safetensors: cannot write" in result.stdout, result.stdout + result.stderr
    assert files_under(tmp_path) == []


def test_replace_directory_onto_a_file_names_it(tmp_path):
    (tmp_path / "tok").write_text("x")
    with pytest.raises(MmtokError, match="tok: is a file"):
        replace_directory(tmp_path / "tok", lambda tmp: (tmp / "a").write_text("a"))
    assert [p.name for p in tmp_path.iterdir()] == ["tok"]


# -- inputs ----------------------------------------------------------------------------------------
def test_json_nesting_is_bounded_without_recursion():
    assert parse_json("[[1], {\"a\": [2]}]") == [[1], {"a": [2]}]
    assert parse_json("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]") == ["[" * 68]
    with pytest.raises(ValueError, match="nested more than 64"):
        parse_json("[" * 65 + "]" * 65)
    with pytest.raises(ValueError):
        parse_json("[" * 1_000_000)


def test_read_json_refuses_a_fifo(tmp_path):
    fifo = make_fifo(tmp_path / "c.json")
    with pytest.raises(MmtokError, match="not a regular file"):
        read_json(fifo, "bad", "fix")


def test_ogg_crc_matches_the_reference_polynomial():
    """ogg_crc (zlib with reflected bytes) against a plain bitwise CRC-32/MSB, poly 0x04C11DB7."""
    from mmtok.media.audio_container import ogg_crc

    def reference(data: bytes) -> int:
        crc = 0
        for byte in data:
            crc ^= byte << 24
            for _ in range(8):
                crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
                crc &= 0xFFFFFFFF
        return crc

    for data in (b"", b"OggS", bytes(range(256)), os.urandom(1000)):
        assert ogg_crc(data) == reference(data)


def test_an_unreachable_hub_fails_fast(monkeypatch, capsys):
    """No answer from the hub: offline mode (cache only) at once, not a minute of retries."""
    import time

    import huggingface_hub.constants as hub

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # (restored after the test; the probe sets it)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    start = time.monotonic()
    assert run(["info", "hf:nobody-here/no-such-codec"]) == 1
    assert time.monotonic() - start < 30
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: hf:nobody-here/no-such-codec"), lines
    assert hub.HF_HUB_OFFLINE is True
