"""fireflow's Whisper worker: faster-whisper in a child process of Node (src/transcribe/whisper.ts).

Reads one JSON request on stdin, writes JSON lines on stdout, one event each:

  {"event": "model", "name", "source", "path", "multilingual", "computeType", "threads", "loadSeconds"}
  {"event": "language", "piece", "language", "detected", "probability" (null unless detected), "duration"}
  {"event": "segment", "piece", "start", "end", "text", "words": [{"word", "start", "end", "probability"}]}
  {"event": "done"}
  {"event": "error", "message", "retriable"}

Times are seconds from the start of the whole recording (each piece's `offset` added). The model is loaded once and
the pieces are transcribed in order. Exit status: 0 done, 2 an error no retry can fix (bad request, a model file
whose hash is not the pinned one, an unknown model), 1 anything else.

Request: {"model": "base" | "tiny.en" | a model directory | a faster-whisper model name, "task": "transcribe" | "detect",
          "pieces": [{"path", "offset"}], "language": null | "en", "beamSize": 5, "threads": 2,
          "computeType": "int8", "vad": true}

Packaged models (python/models.json) come from PyPI packages installed in this environment: their files are joined
where a package splits them, checked against the pinned sha256, and kept under <venv>/fireflow-models/<name>, with a
stamp (size and mtime of each verified file) so later starts do not hash 145 MB again.
"""

import hashlib
import json
import os
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Refused(Exception):
    """An error a retry cannot fix."""


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def sha256_of(paths, out=None):
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                h.update(block)
                if out is not None:
                    out.write(block)
    return h.hexdigest()


def fingerprint(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def packaged_model(name, spec, models_dir):
    """The directory of packaged model `name`, assembled and verified."""
    site = sysconfig.get_paths()["purelib"]
    target = os.path.join(models_dir, name)
    stamp_path = os.path.join(target, ".verified.json")
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        stamp = {}
    os.makedirs(target, exist_ok=True)
    verified = {}
    for file, want in spec["files"].items():
        dest = os.path.join(target, file)
        key = f"{file}:{want['sha256']}"
        if os.path.exists(dest) and stamp.get(key) == fingerprint(dest):
            verified[key] = stamp[key]
            continue
        sources = [os.path.join(site, s) for s in want["from"]]
        missing = [s for s in sources if not os.path.exists(s)]
        if missing:
            raise Refused(
                f"Whisper model {name!r} needs {', '.join(spec['packages'])} installed in {sys.prefix}; "
                f"missing {os.path.relpath(missing[0], site)}"
            )
        tmp = f"{dest}.tmp-{os.getpid()}"
        with open(tmp, "wb") as out:
            got = sha256_of(sources, out)
        if got != want["sha256"]:
            os.unlink(tmp)
            raise Refused(
                f"{file} of Whisper model {name!r} (from {', '.join(spec['packages'])}) has sha256 {got}, "
                f"not the {want['sha256']} pinned in python/models.json: the package changed; refusing to load it"
            )
        os.replace(tmp, dest)
        verified[key] = fingerprint(dest)
    with open(f"{stamp_path}.tmp-{os.getpid()}", "w") as f:
        json.dump(verified, f)
    os.replace(f"{stamp_path}.tmp-{os.getpid()}", stamp_path)
    return target


def resolve_model(wanted):
    """(what faster-whisper loads, where it came from, multilingual or None if unknown)."""
    manifest_path = os.environ.get("FIREFLOW_WHISPER_MANIFEST", os.path.join(HERE, "models.json"))
    with open(manifest_path) as f:
        manifest = {k: v for k, v in json.load(f).items() if not k.startswith("/")}
    if wanted in manifest:
        models_dir = os.environ.get("FIREFLOW_WHISPER_MODELS_DIR", os.path.join(sys.prefix, "fireflow-models"))
        spec = manifest[wanted]
        return packaged_model(wanted, spec, models_dir), f"packaged: {', '.join(spec['packages'])}", spec["multilingual"]
    if os.path.isdir(wanted):
        if not os.path.exists(os.path.join(wanted, "model.bin")):
            raise Refused(f"model directory {wanted} has no model.bin (a CTranslate2 conversion of Whisper is needed)")
        return wanted, "directory", None
    if os.sep in wanted or wanted.startswith("."):
        raise Refused(f"model directory {wanted} does not exist")
    return wanted, "hub", None


def words_of(raw, offset):
    """Whisper's words, with a piece that starts with punctuation and no space ("ill", "-disposed") joined to the one
    before: one word as written. Scripts without spaces (Chinese, Japanese) start with letters and stay apart."""
    words = []
    for w in raw:
        text = w.word.strip()
        if not text:
            continue
        if words and not w.word[:1].isspace() and not text[0].isalnum():
            last = words[-1]
            last["word"] += text
            last["end"] = round(offset + w.end, 3)
            last["probability"] = min(last["probability"], round(w.probability, 4))
            continue
        words.append({"word": text, "start": round(offset + w.start, 3), "end": round(offset + w.end, 3), "probability": round(w.probability, 4)})
    return words


def check_request(req):
    if not isinstance(req, dict):
        raise Refused("the request must be a JSON object")
    pieces = req.get("pieces")
    if not isinstance(pieces, list) or not pieces:
        raise Refused("the request needs pieces: [{path, offset}]")
    for p in pieces:
        if not isinstance(p, dict) or not isinstance(p.get("path"), str) or not isinstance(p.get("offset", 0), (int, float)):
            raise Refused(f"bad piece {json.dumps(p)}: needs a path and a numeric offset")
        if not os.path.exists(p["path"]):
            raise Refused(f"audio file {p['path']} does not exist")
    if not isinstance(req.get("model"), str) or not req["model"]:
        raise Refused("the request needs a model")
    return req


def main():
    try:
        req = check_request(json.loads(sys.stdin.readline() or "null"))
    except ValueError as e:
        raise Refused(f"the request is not JSON: {e}")
    path, source, multilingual = resolve_model(req["model"])
    if source != "hub":
        # Nothing to download: never let huggingface_hub try (it is read at import).
        os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.monotonic()
    from faster_whisper import WhisperModel

    threads = int(req.get("threads", 2))
    compute_type = req.get("computeType", "int8")
    try:
        model = WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1)
    except Exception as e:  # a hub name that could not be fetched, a directory that is not a model
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise (Refused if source != "hub" or offline else RuntimeError)(f"could not load Whisper model {req['model']!r}: {e}")
    if multilingual is None:
        multilingual = model.model.is_multilingual
    emit(
        "model",
        name=req["model"],
        source=source,
        path=path,
        multilingual=multilingual,
        computeType=compute_type,
        threads=threads,
        loadSeconds=round(time.monotonic() - started, 3),
    )
    language = req.get("language") or None
    if language and multilingual and language not in model.supported_languages:
        raise Refused(f"Whisper does not know language {language!r}; it knows {', '.join(model.supported_languages)}")
    if req.get("task") == "detect":
        # Language identification only: one pass of the encoder over the first 30 s of each piece.
        if not multilingual:
            raise Refused(f"Whisper model {req['model']!r} is English-only: it cannot identify a language")
        from faster_whisper.audio import decode_audio

        for i, piece in enumerate(req["pieces"]):
            audio = decode_audio(piece["path"], sampling_rate=16000)
            detected, probability, _ = model.detect_language(audio)
            emit("language", piece=i, language=detected, probability=round(probability, 4), detected=True, duration=round(len(audio) / 16000, 3))
        emit("done")
        return
    for i, piece in enumerate(req["pieces"]):
        offset = float(piece.get("offset", 0))
        segments, info = model.transcribe(
            piece["path"],
            language=language if multilingual else "en",
            beam_size=int(req.get("beamSize", 5)),
            word_timestamps=True,
            vad_filter=bool(req.get("vad", True)),
        )
        detected = multilingual and not language
        emit(
            "language",
            piece=i,
            language=info.language,
            probability=round(info.language_probability, 4) if detected else None,
            detected=detected,
            duration=round(info.duration, 3),
        )
        for s in segments:
            emit(
                "segment",
                piece=i,
                start=round(offset + s.start, 3),
                end=round(offset + s.end, 3),
                text=s.text.strip(),
                words=words_of(s.words or [], offset),
            )
    emit("done")


if __name__ == "__main__":
    try:
        main()
    except Refused as e:
        emit("error", message=str(e), retriable=False)
        sys.exit(2)
    except Exception as e:
        emit("error", message=f"{type(e).__name__}: {e}", retriable=True)
        sys.exit(1)
