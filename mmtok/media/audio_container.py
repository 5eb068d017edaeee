"""Does an audio file hold what its container promises? Checks libsndfile cannot make.

libsndfile clamps what it reports to what it can read: a WAV whose `data` chunk claims ten
hours but holds two seconds reports two seconds, and an OGG with damaged pages silently
skips them (a page with a bad checksum is dropped, and the decoder resyncs on the next), so
comparing its frame count with the samples decoded never fires for these formats. Here the
container itself is read:

- WAV (RIFF / RIFX): the `data` chunk's declared size against the bytes the file holds
  (sizes 0 and 0xFFFFFFFF mean "unknown", as streaming writers leave them, and pass).
- OGG (Vorbis, Opus, FLAC in OGG): every page must follow the previous one exactly, carry a
  valid CRC-32 and the next sequence number of its stream, and the last page must be whole.

FLAC and MP3 need nothing here: libsndfile reports the STREAMINFO / Xing count for them and
stops early on damage, which `AudioBlocks` compares with what decodes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from mmtok.errors import MmtokError

FIX = "the file is corrupt or truncated; re-export it"


def check_container(path: Path, container: str, channels: int) -> None:
    """Raise MmtokError if `path` (libsndfile's format name `container`, e.g. "WAV", "OGG")
    promises more audio than it holds."""
    if container in ("WAV", "WAVEX"):
        _check_wav(path, channels)
    elif container == "OGG":
        _check_ogg(path)


# -- WAV ---------------------------------------------------------------------------------------
def _check_wav(path: Path, channels: int) -> None:
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # RF64 / W64 and friends: left to libsndfile
        endian = "<" if head[:4] == b"RIFF" else ">"
        size = path.stat().st_size
        block_align = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            name, length = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
            start = f.tell()
            if name == b"fmt ":
                fmt = f.read(min(length, 16))
                if len(fmt) >= 14:
                    block_align = struct.unpack(endian + "H", fmt[12:14])[0]
            elif name == b"data":
                held = size - start
                if length in (0, 0xFFFFFFFF) or length <= held:
                    return
                frame = block_align or max(channels, 1) * 2
                raise MmtokError(
                    f"{path}: truncated: the WAV header promises {length // frame} samples but the file holds "
                    f"{held // frame}; {FIX}"
                )
            f.seek(start + length + (length & 1))  # chunks are padded to an even size


# -- OGG ---------------------------------------------------------------------------------------
_REVERSED_BITS = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(page: bytes) -> int:
    """The CRC-32 of an Ogg page (its CRC field zeroed): polynomial 0x04C11DB7, MSB first,
    no initial or final XOR. zlib's CRC-32 uses the same polynomial bit-reflected, with
    inverted start and end; reflecting the bytes and the result turns one into the other,
    at C speed."""
    raw = zlib.crc32(page.translate(_REVERSED_BITS), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


def _check_ogg(path: Path) -> None:
    """Walk every page: contiguous, checksummed, in sequence, whole."""
    size = path.stat().st_size
    sequence: dict[int, int] = {}
    offset = number = 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(27)
            if len(header) < 27:
                raise MmtokError(f"{path}: truncated: OGG page {number} at byte {offset} is cut off; {FIX}")
            if header[:4] != b"OggS" or header[4] != 0:
                raise MmtokError(f"{path}: damaged OGG data at byte {offset} (page {number} expected there); {FIX}")
            serial, seq, crc = struct.unpack("<III", header[14:26])
            lacing = f.read(header[26])
            body = f.read(sum(lacing))
            if len(lacing) < header[26] or len(body) < sum(lacing):
                raise MmtokError(f"{path}: truncated: OGG page {number} at byte {offset} is cut off; {FIX}")
            if ogg_crc(header[:22] + b"\0\0\0\0" + header[26:] + lacing + body) != crc:
                raise MmtokError(f"{path}: damaged OGG page {number} at byte {offset} (checksum mismatch); {FIX}")
            if serial in sequence and seq != sequence[serial] + 1:
                raise MmtokError(f"{path}: OGG pages missing before byte {offset} (page {sequence[serial] + 1} of the "
                                 f"stream is followed by {seq}); {FIX}")
            sequence[serial] = seq
            offset += 27 + len(lacing) + len(body)
            number += 1
