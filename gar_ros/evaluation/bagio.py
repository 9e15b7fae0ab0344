"""Reading and writing rosbag2 recordings (sqlite3 and MCAP) with the ``rosbags`` library.

:class:`BagReader` yields every message of the chosen topics in log-time order, each either
decoded or carrying a one-line error (broken data, a type without a definition, a corrupt
per-message compression block), so that one bad message never stops a run. A bag that cannot
be opened at all (missing, truncated, not a bag) raises :class:`BagError`.
Messages sharing one log time come out in the order image, regions, ground truth, query, other.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys.store import Typestore

from gar_ros.errors import BagError
from gar_ros.evaluation import typestore as ts

log = logging.getLogger(__name__)

GT_TOPIC_SUFFIX = "ground_truth"


@dataclass
class BagMessage:
    """One message of a bag: decoded ``msg`` or an ``error`` (then ``msg`` is None)."""

    topic: str
    msgtype: str  # normalized (pkg/msg/Type)
    timestamp: int  # log time, ns
    index: int  # position in the bag's log-time order
    msg: Any = None
    error: str = ""


@dataclass
class TopicInfo:
    topic: str
    msgtype: str  # as recorded
    normalized: str
    count: int
    error: str = ""  # why messages of this topic cannot be decoded ("" = decodable)


@dataclass
class TopicChoice:
    """The topics a run reads (None: none in the bag) and notes on the choice."""

    image: str | None = None
    regions: str | None = None
    queries: str | None = None
    ground_truth: str | None = None
    notes: list[str] = field(default_factory=list)

    def topics(self) -> list[str]:
        return [t for t in (self.image, self.regions, self.ground_truth, self.queries) if t]


def _bag_error(path: Path, err: BaseException) -> BagError:
    text = str(err) or type(err).__name__
    return BagError(f"cannot read bag {path}: {text}")


class BagReader:
    """A rosbag2 bag opened for reading (use as a context manager)."""

    def __init__(self, path: str | Path, *, msg_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.store: Typestore = ts.extended_typestore(msg_dir)
        self._reader: Reader | None = None
        self._per_message_zstd = False
        self.topics: dict[str, TopicInfo] = {}

    # -- open / close
    def __enter__(self) -> BagReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if not self.path.exists():
            raise BagError(f"bag not found: {self.path}")
        try:
            reader = Reader(self.path)
            reader.open()
        except BagError:
            raise
        except Exception as err:  # rosbags/apsw/yaml errors of a broken bag
            raise _bag_error(self.path, err) from err
        self._reader = reader
        # Per-message compression: decompress each message here, so that one corrupt block is one
        # message's error instead of the end of the stream.
        storage = reader.storage
        meta = getattr(storage, "metadata", None)
        if meta is not None and getattr(meta, "compression_mode", None) == "message":
            storage.metadata = meta._replace(compression_mode=None)
            self._per_message_zstd = True
        self._index_topics()

    def close(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            raise BagError(f"bag {self.path} is not open")
        return self._reader

    @property
    def start_time(self) -> int:
        return int(self.reader.start_time) if self.reader.message_count else 0

    @property
    def duration(self) -> int:
        return int(self.reader.duration) if self.reader.message_count else 0

    def _index_topics(self) -> None:
        for conn in self.reader.connections:
            norm = ts.normalize_msgtype(conn.msgtype)
            info = self.topics.get(conn.topic)
            if info is None:
                info = TopicInfo(conn.topic, conn.msgtype, norm, 0)
                self.topics[conn.topic] = info
            info.count += int(conn.msgcount)
            if norm not in self.store.types:
                try:
                    ts.register_definition(self.store, norm, conn.msgdef.data or "")
                except BagError as err:
                    info.error = str(err)
            if norm != conn.msgtype and not info.error:
                log.debug("topic %s: type %r read as %r", conn.topic, conn.msgtype, norm)

    # -- topic choice
    def choose_topics(
        self,
        image: str | None = None,
        regions: str | None = None,
        queries: str | None = None,
        ground_truth: str | None = None,
    ) -> TopicChoice:
        """Topics by explicit name (BagError if absent) or auto-detected by message type."""
        choice = TopicChoice()
        for attr, wanted, kinds in (
            ("image", image, (ts.IMAGE, ts.COMPRESSED_IMAGE)),
            ("regions", regions, (ts.REGION_ARRAY,)),
            ("queries", queries, (ts.QUERY,)),
            ("ground_truth", ground_truth, (ts.STRING,)),
        ):
            if wanted:
                name = self._resolve(wanted)
                setattr(choice, attr, name)
                continue
            cands = [t for t in self.topics.values() if t.normalized in kinds]
            if attr == "ground_truth":
                cands = [t for t in cands if t.topic.rstrip("/").endswith(GT_TOPIC_SUFFIX)]
            if attr == "image":
                cands.sort(key=lambda t: ("debug" in t.topic, t.normalized != ts.IMAGE, t.topic))
            else:
                cands.sort(key=lambda t: t.topic)
            if cands:
                setattr(choice, attr, cands[0].topic)
                if len(cands) > 1:
                    choice.notes.append(
                        f"{attr}: using {cands[0].topic}; also present: {', '.join(c.topic for c in cands[1:])}"
                    )
        return choice

    def _resolve(self, topic: str) -> str:
        for name in (topic, "/" + topic.lstrip("/"), topic.lstrip("/")):
            if name in self.topics:
                return name
        raise BagError(f"topic {topic!r} not in bag {self.path} (topics: {', '.join(sorted(self.topics))})")

    # -- messages
    def messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        """Messages of ``topics`` in log-time order (ties: image, regions, gt, query), decoded."""
        wanted = list(topics)
        rank = {t: i for i, t in enumerate(wanted)}
        conns = [c for c in self.reader.connections if c.topic in rank]
        if not conns:
            return
        group: list[tuple[int, int, BagMessage]] = []
        index = 0
        try:
            stream = self.reader.messages(connections=conns)
            for conn, stamp, raw in stream:
                if group and stamp != group[0][2].timestamp:
                    yield from self._flush(group)
                    group = []
                bm = self._decode(conn.topic, stamp, raw, index)
                group.append((rank[conn.topic], index, bm))
                index += 1
        except BagError:
            raise
        except Exception as err:  # storage errors mid-stream (truncated file)
            raise _bag_error(self.path, err) from err
        yield from self._flush(group)

    @staticmethod
    def _flush(group: list[tuple[int, int, BagMessage]]) -> Iterator[BagMessage]:
        for _, _, bm in sorted(group, key=lambda g: (g[0], g[1])):
            yield bm

    def _decode(self, topic: str, stamp: int, raw: bytes | memoryview, index: int) -> BagMessage:
        info = self.topics[topic]
        bm = BagMessage(topic, info.normalized, int(stamp), index)
        if info.error:
            bm.error = info.error
            return bm
        data = bytes(raw)
        if self._per_message_zstd:
            try:
                data = _zstd_decompress(data)
            except Exception as err:  # zstd error of one corrupt block
                bm.error = f"cannot decompress message ({len(data)} bytes): {err}"
                return bm
        try:
            bm.msg = self.store.deserialize_cdr(data, info.normalized)
        except Exception as err:  # rosbags SerdeError/struct/index errors of broken data
            bm.error = f"cannot deserialize {info.normalized} ({len(data)} bytes): {type(err).__name__}: {err}"
        return bm


def _zstd_decompress(data: bytes) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    return zstd.decompress(data)


def storage_for(path: Path, storage: str | None) -> StoragePlugin:
    """``sqlite3``/``mcap`` by name, else by the path's suffix (``.mcap`` -> MCAP), else sqlite3."""
    name = (storage or ("mcap" if path.suffix == ".mcap" else "sqlite3")).lower()
    if name not in ("sqlite3", "mcap"):
        raise BagError(f"unknown bag storage {storage!r} (sqlite3 or mcap)")
    return StoragePlugin.MCAP if name == "mcap" else StoragePlugin.SQLITE3


class BagWriter:
    """A new rosbag2 bag (version 9) with typed connections; use as a context manager.

    ``compression``: None, ``message`` (zstd per message) or ``file`` (zstd per storage file).

    ``write(topic, msgtype, msg, timestamp)`` adds the connection on first use.
    """

    def __init__(self, path: str | Path, *, storage: str | None = None, store: Typestore | None = None,
                 overwrite: bool = False, compression: str | None = None) -> None:
        self.path = Path(path)
        self.store = store or ts.gar_typestore()
        if self.path.exists():
            if not overwrite:
                raise BagError(f"output bag exists already: {self.path}")
            import shutil

            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=9, storage_plugin=storage_for(self.path, storage))
        if compression:
            from rosbags.rosbag2 import CompressionFormat, CompressionMode

            try:
                mode = CompressionMode[compression.upper()]
            except KeyError as err:
                raise BagError(f"compression must be message or file, got {compression!r}") from err
            self._writer.set_compression(mode, CompressionFormat.ZSTD)
        self._conns: dict[str, Any] = {}

    def __enter__(self) -> BagWriter:
        try:
            self._writer.open()
        except Exception as err:
            raise BagError(f"cannot create bag {self.path}: {err}") from err
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def write(self, topic: str, msgtype: str, msg: Any, timestamp: int) -> None:
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store)
            self._conns[topic] = conn
        self._writer.write(conn, int(timestamp), self.store.serialize_cdr(msg, msgtype))

    def write_raw(self, topic: str, msgtype: str, data: bytes, timestamp: int, *, msgdef: str = "",
                  rihs01: str = "") -> None:
        """Write already serialized bytes; ``msgdef``/``rihs01`` default to the typestore's."""
        conn = self._conns.get(topic)
        if conn is None:
            if not rihs01:
                norm = ts.normalize_msgtype(msgtype)
                msgdef, _ = self.store.generate_msgdef(norm, ros_version=2) if norm in self.store.types else (msgdef, "")
                rihs01 = self.store.hash_rihs01(norm) if norm in self.store.types else "RIHS01_" + "0" * 64
            conn = self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=rihs01)
            self._conns[topic] = conn
        self._writer.write(conn, int(timestamp), data)
