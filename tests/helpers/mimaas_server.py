#!/usr/bin/python3
# mimaas_server: a MIMaaS-compatible REST server for minnow's tests, on loopback, with faults
"""A stand-in for the MIMaaS platform (and for minnow's generic `http` measurement protocol),
written for the tests from the protocol notes in ../shared/REFERENCES.md. Standard library only.

Start:  mimaas_server.py [--port 0] [--token T] [--user NAME:PASSWORD] [--runs N] [--state FILE]
                         [--fault-rate F] [--fault-kinds K,K] [--seed S] [--slow-s S]
                         [--polls-pending N] [--polls-processing N] [--tls CERT KEY]
It binds 127.0.0.1 (never another address) and prints the port on its first stdout line.

MIMaaS side: POST /login, GET /me, GET /boards[/NAME[/status]], POST /validate, POST /requests/,
GET /requests/?status=&board=, GET|PATCH|DELETE /requests/ID, GET /requests/ID/artifacts/NAME.
Authenticated calls need `Authorization: TOKEN` (the raw token; "Bearer TOKEN" is refused).
A request goes pending -> processing -> done over a few polls of GET /requests/ID; a model whose
size plus the firmware overhead exceeds the board's flash, or whose bytes hold FLASH_FAIL, ends in
`error` with an error_message and an error_log artifact. Results are plausible and deterministic:
rom from the file size, latency and power from the model's sha256.

Generic side (man/nas-measure-http.7): POST /jobs (multipart model, target, options, key),
GET /jobs/ID, DELETE /jobs/ID, with `Authorization: Bearer TOKEN`.

Control side (no auth, never faulted, not counted): GET /_control/stats, POST /_control/faults
{"rules": [...], "rate": F, "kinds": [...]}, DELETE /_control/faults, POST /_control/reset
(counters), GET /_control/requests/ID (the server's own record, results included).
A fault rule: {"method": "GET", "path": REGEX (full match), "kind": K, "count": N (-1: always),
"retry_after": "1", "delay_s": S, "status": N, "body": TEXT, "message": TEXT}. `message` may hold
{authorization} and {body}: the request's Authorization header and body, echoed (to test that
a client scrubs secrets from what it reports). Kinds answered before the request is handled:
500, 503, 429, 401, 403, 403_quota, 404, custom, die (the process exits without answering).
Kinds that handle the request first (its effect is kept) and then spoil the answer: slow (the
answer after delay_s), truncate (Content-Length larger than the body sent), malformed (the JSON
cut short, Content-Length matching), garbage (an HTML page with status 200), drop (no answer),
500_after (a 500 instead of the real answer).
"""
import argparse
import email.parser
import email.policy
import hashlib
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIRMWARE_OVERHEAD = 284262          # 277.6 KB: the platform's precheck figure for the nrf5340dk
FIRMWARE_RAM = 374784               # 366 KB of static RAM, constant across models
BOARDS = [  # name, board_type, variant, flash KB, ram KB, arena KB, mV, online
    ("nrf5340dk_1", "nrf5340dk", "nrf5340dk/nrf5340/cpuapp", 1024, 448, 300, 3300, True),
    ("nrf5340dk_2", "nrf5340dk", "nrf5340dk/nrf5340/cpuapp", 1024, 448, 300, 3300, True),
    ("nrf52840dk_1", "nrf52840dk", "nrf52840dk/nrf52840", 1024, 256, 160, 3000, True),
    ("nucleo_l476rg_1", "nucleo_l476rg", "nucleo_l476rg", 1024, 128, 80, 3300, False),
]
BOARD_TYPES = {b[1]: b for b in BOARDS}
PRE_KINDS = {"500", "503", "429", "401", "403", "403_quota", "404", "custom", "die"}
POST_KINDS = {"slow", "truncate", "malformed", "garbage", "drop", "500_after"}
RANDOM_KINDS = ["500", "503", "429", "slow", "truncate", "malformed", "drop", "500_after"]


def model_hash(sha):
    return int(sha[:12], 16)


def results_for(size, sha):
    h = model_hash(sha)
    duration_s = (2.0 + size / 1024.0 * 0.35 + (h % 1000) / 100.0) / 1000.0
    power_uw = 10300.0 + (h >> 10) % 2200
    return {"ram_usage": FIRMWARE_RAM, "rom_usage": FIRMWARE_OVERHEAD + size,
            "duration_avg_s": round(duration_s, 9), "avg_power_uW": power_uw,
            "avg_energy_uJ": round(power_uw * duration_s, 6), "avg_current_uA": round(power_uw / 3.3, 3)}


def arena_used(sha):
    return 20000 + model_hash(sha) % 180000


class State:
    """Everything the server knows; saved to a JSON file after each change when --state is set."""

    def __init__(self, path, args):
        self.path = path
        self.lock = threading.RLock()
        self.models = {}
        self.data = None
        if path and os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)
        if self.data is None:
            self.data = {"users": {}, "tokens": {}, "requests": {}, "jobs": {}, "job_keys": {},
                         "next_id": 1, "counters": self.empty_counters()}
            for spec in args.user:
                name, _, password = spec.partition(":")
                self.add_user(name, password, None, args.runs)
            for token in args.token:
                self.add_user("user%d" % (len(self.data["users"]) + 1), None, token, args.runs)
            self.save()

    @staticmethod
    def empty_counters():
        return {"requests_seen": 0, "by_endpoint": {}, "submissions": {}, "successful_submissions": 0,
                "job_submissions": {}, "faults": {}}

    def add_user(self, name, password, token, runs):
        token = token or hashlib.sha256(("token:" + name).encode()).hexdigest()
        uid = len(self.data["users"]) + 1
        self.data["users"][name] = {"id": uid, "username": name, "email": name + "@example.org",
                                    "first_name": name.title(), "surname": "Tester", "password": password,
                                    "available_runs": runs, "plan": "free", "token": token}
        self.data["tokens"][token] = name

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    # Model files live beside the state file (STATE.models/SHA256), not in it: the state is
    # rewritten after every change and must stay small.
    def put_model(self, sha, model):
        self.models[sha] = model
        if self.path:
            folder = self.path + ".models"
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, sha), "wb") as f:
                f.write(model)

    def get_model(self, sha):
        if sha not in self.models and self.path:
            with open(os.path.join(self.path + ".models", sha), "rb") as f:
                self.models[sha] = f.read()
        return self.models[sha]

    def count(self, section, key, n=1):
        c = self.data["counters"][section]
        c[key] = c.get(key, 0) + n


class Faults:
    def __init__(self, rate, kinds, seed):
        self.lock = threading.Lock()
        self.rules = []
        self.rate = rate
        self.kinds = kinds
        self.rng = random.Random(seed)

    def pick(self, method, path):
        with self.lock:
            for rule in self.rules:
                if rule.get("count", 1) == 0:
                    continue
                if rule.get("method", method) != method or not re.fullmatch(rule.get("path", ".*"), path):
                    continue
                if rule.get("count", 1) > 0:
                    rule["count"] = rule.get("count", 1) - 1
                return rule
            if self.rate > 0 and self.rng.random() < self.rate:
                return {"kind": self.rng.choice(self.kinds), "random": True}
        return None


def endpoint_key(method, path):
    path = re.sub(r"/requests/\d+", "/requests/{id}", path)
    path = re.sub(r"/jobs/[^/]+", "/jobs/{id}", path)
    path = re.sub(r"/artifacts/[^/]+", "/artifacts/{name}", path)
    path = re.sub(r"^/boards/[^/]+", "/boards/{name}", path)
    return method + " " + path


def parse_form(content_type, body):
    """multipart/form-data -> {name: (value bytes, filename or None)}"""
    if not content_type.startswith("multipart/form-data"):
        raise ValueError("expected multipart/form-data, got '%s'" % content_type)
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ValueError("not a multipart body")
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_payload(decode=True) or b"", part.get_filename())
    return fields


class Reply(Exception):
    def __init__(self, status, obj):
        super().__init__(status)
        self.status = status
        self.obj = obj


class Handler(BaseHTTPRequestHandler):
    server_version = "mimaas-test/1"

    def log_message(self, fmt, *args):  # quiet: the tests read counters, not logs
        if self.server.opts.verbose:
            sys.stderr.write("mimaas_server: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # ---- plumbing -------------------------------------------------------------------------

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        prefix = self.server.opts.prefix
        if prefix and path.startswith(prefix):
            path = path[len(prefix):]
        self.query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        if path.startswith("/_control/"):
            return self.answer(*self.control(method, path))
        st = self.server.state
        with st.lock:
            st.data["counters"]["requests_seen"] += 1
            st.count("by_endpoint", endpoint_key(method, path))
            st.save()
        rule = self.server.faults.pick(method, path)
        kind = rule["kind"] if rule else None
        if kind:
            with st.lock:
                st.count("faults", kind)
                st.save()
        if kind in PRE_KINDS:
            return self.pre_fault(rule)
        status, obj = self.route(method, path)
        if kind in POST_KINDS:
            return self.post_fault(rule, status, obj)
        self.answer(status, obj)

    def answer(self, status, obj, headers=None, raw=None, send_len=None):
        body = raw if raw is not None else (obj if isinstance(obj, bytes) else json.dumps(obj).encode())
        ctype = "application/octet-stream" if isinstance(obj, bytes) else "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body) if send_len is None else send_len))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, socket.timeout, ssl.SSLError):
            pass  # the client gave up (its timeout): nothing to tell it

    def message(self, rule, default):
        text = rule.get("message", default)
        return text.replace("{authorization}", self.headers.get("Authorization", "")).replace(
            "{body}", self.body.decode("utf-8", "replace"))

    def pre_fault(self, rule):
        kind = rule["kind"]
        if kind == "die":
            os._exit(3)
        if kind == "429":
            return self.answer(429, {"message": self.message(rule, "too many requests")},
                               {"Retry-After": str(rule.get("retry_after", "1"))})
        if kind == "custom":
            return self.answer(rule.get("status", 200), None, raw=rule.get("body", "").encode(),
                               headers=rule.get("headers"))
        status, text = {"500": (500, "internal server error"), "503": (503, "service unavailable"),
                        "401": (401, "invalid or missing API token"), "403": (403, "forbidden"),
                        "403_quota": (403, "You have no available runs left on your plan"),
                        "404": (404, "not found")}[kind]
        headers = {"Retry-After": str(rule["retry_after"])} if "retry_after" in rule else None
        self.answer(status, {"message": self.message(rule, text)}, headers)

    def post_fault(self, rule, status, obj):
        kind = rule["kind"]
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        if kind == "slow":
            time.sleep(float(rule.get("delay_s", self.server.opts.slow_s)))
            return self.answer(status, obj)
        if kind == "truncate":
            return self.answer(status, obj, raw=body[: len(body) // 2], send_len=len(body))
        if kind == "malformed":
            return self.answer(status, None, raw=body[: max(1, len(body) // 2)])
        if kind == "garbage":
            return self.answer(200, None, raw=b"<html><body>502 Bad Gateway</body></html>")
        if kind == "drop":
            self.close_connection = True
            return None
        return self.answer(500, {"message": "internal server error after the change"})  # 500_after

    def control(self, method, path):
        st, faults = self.server.state, self.server.faults
        if path == "/_control/stats" and method == "GET":
            with st.lock:
                return 200, st.data["counters"]
        if path == "/_control/faults" and method == "POST":
            spec = json.loads(self.body or b"{}")
            with faults.lock:
                faults.rules = spec.get("rules", [])
                faults.rate = float(spec.get("rate", faults.rate))
                faults.kinds = spec.get("kinds", faults.kinds)
            return 200, {"rules": len(faults.rules)}
        if path == "/_control/faults" and method == "DELETE":
            with faults.lock:
                faults.rules, faults.rate = [], 0.0
            return 200, {}
        if path == "/_control/reset" and method == "POST":
            with st.lock:
                st.data["counters"] = State.empty_counters()
                st.save()
            return 200, {}
        m = re.fullmatch(r"/_control/requests/(\d+)", path)
        if m and method == "GET":
            with st.lock:
                req = st.data["requests"].get(m.group(1))
                if not req:
                    return 404, {"message": "no such request"}
                return 200, req
        return 404, {"message": "no control endpoint %s %s" % (method, path)}

    # ---- the API ------------------------------------------------------------------------

    def route(self, method, path):
        try:
            return self.route_api(method, path)
        except Reply as r:
            return r.status, r.obj

    def route_api(self, method, path):
        if path == "/login" and method == "POST":
            return self.login()
        if path == "/boards" and method == "GET":
            return 200, {"boards": [self.board_json(b) for b in BOARDS]}
        m = re.fullmatch(r"/boards/([^/]+)(/status)?", path)
        if m and method == "GET":
            return self.board_one(m.group(1), bool(m.group(2)))
        if path.startswith("/jobs"):
            return self.jobs(method, path)
        user = self.user()
        if path == "/me" and method == "GET":
            return 200, {k: v for k, v in user.items() if k not in ("password", "token")}
        if path == "/validate" and method == "POST":
            return self.validate()
        if path == "/requests/" and method == "POST":
            return self.submit(user)
        if path in ("/requests/", "/requests") and method == "GET":
            return self.list_requests(user)
        m = re.fullmatch(r"/requests/(\d+)(?:/artifacts/([^/]+))?", path)
        if m:
            req = self.own_request(user, m.group(1))
            if m.group(2):
                return self.artifact(req, m.group(2))
            if method == "GET":
                return self.poll(req)
            if method == "PATCH":
                return self.patch(req)
            if method == "DELETE":
                return self.delete(req)
        raise Reply(404, {"message": "no endpoint %s %s" % (method, path)})

    def user(self, scheme=""):
        got = self.headers.get("Authorization", "")
        token = got[len(scheme):] if scheme and got.startswith(scheme) else (None if scheme else got)
        st = self.server.state
        name = st.data["tokens"].get(token) if token else None
        if not name:
            raise Reply(401, {"message": "invalid or missing API token"})
        return st.data["users"][name]

    def login(self):
        try:
            creds = json.loads(self.body)
            name, password = creds["username"], creds["password"]
        except (ValueError, KeyError, TypeError):
            raise Reply(400, {"message": "expected JSON {username, password}"})
        user = self.server.state.data["users"].get(name)
        if not user or user["password"] is None or user["password"] != password:
            raise Reply(401, {"message": "invalid username or password"})
        return 200, {"api_token": user["token"]}

    def board_json(self, b):
        name, btype, variant, flash, ram, arena, mv, online = b
        reqs = self.server.state.data["requests"].values()
        queued = sum(1 for r in reqs if r["board"] == btype and self.status_of(r) == "pending")
        processing = sum(1 for r in reqs if r["board"] == btype and self.status_of(r) == "processing")
        instances = sum(1 for x in BOARDS if x[1] == btype and x[7])
        return {"name": name, "variant": variant, "board_type": btype,
                "specifications": {"flash_size": flash, "ram_size": ram,
                                   "max_available_tensor_arena_size": arena, "voltage": mv},
                "utilization": {"status": ("busy" if processing else "idle") if online else "offline",
                                "queued_requests": queued, "processing_requests": processing,
                                "online_instances": instances}}

    def board_one(self, name, status_only):
        for b in BOARDS:
            if b[0] == name or b[1] == name:
                j = self.board_json(b)
                return 200, (j["utilization"] if status_only else j)
        raise Reply(404, {"message": "board '%s' not found" % name})

    def model_form(self, file_field="network"):
        try:
            form = parse_form(self.headers.get("Content-Type", ""), self.body)
        except ValueError as e:
            raise Reply(400, {"message": str(e)})
        if file_field not in form or form[file_field][1] is None:
            raise Reply(400, {"message": "missing file field '%s'" % file_field})
        return form

    def precheck(self, board, size, model):
        b = BOARD_TYPES[board]
        if size + FIRMWARE_OVERHEAD > b[3] * 1024:
            return ("precheck: Model file (%.1f KB) plus firmware overhead (%.1f KB) exceeds board flash (%d KB)"
                    % (size / 1024.0, FIRMWARE_OVERHEAD / 1024.0, b[3]))
        if b"FLASH_FAIL" in model:
            return "flash_failed: the board did not answer after flashing"
        return None

    def validate(self):
        form = self.model_form()
        model = form["network"][0]
        board = form.get("board", (b"", None))[0].decode()
        errors, warnings = [], []
        if model[4:8] != b"TFL3":
            errors.append("not a TFLite flatbuffer (no 'TFL3' identifier)")
        if board not in BOARD_TYPES:
            errors.append("unknown board '%s'" % board)
        elif model[4:8] == b"TFL3":
            problem = self.precheck(board, len(model), b"")
            if problem:
                errors.append(problem)
        if len(model) > 512 * 1024:
            warnings.append("large model: flashing takes long")
        return 200, {"valid": not errors, "errors": errors, "warnings": warnings}

    def submit(self, user):
        form = self.model_form()
        model, filename = form["network"]
        board = form.get("board", (b"", None))[0].decode()
        if board not in BOARD_TYPES:
            raise Reply(400, {"message": "unknown board '%s'" % board})
        quantize = form.get("quantize", (b"false", None))[0].decode()
        if quantize not in ("true", "false"):
            raise Reply(400, {"message": "quantize must be 'true' or 'false'"})
        build_mode = form.get("build_mode", (b"pristine", None))[0].decode()
        st = self.server.state
        with st.lock:
            if user["available_runs"] <= 0:
                raise Reply(403, {"message": "You have no available runs left on your plan"})
            user["available_runs"] -= 1
            rid = str(st.data["next_id"])
            st.data["next_id"] += 1
            sha = hashlib.sha256(model).hexdigest()
            problem = self.precheck(board, len(model), model)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            st.data["requests"][rid] = {
                "id": int(rid), "user": user["username"], "board": board, "quantize": quantize == "true",
                "build_mode": build_mode, "filename": filename, "folder_name": "req_%s_%s" % (rid, sha[:8]),
                "sha256": sha, "size": len(model), "polls": 0, "created_at": now, "updated_at": now,
                "fate": "error" if problem else "done", "error_message": problem,
                "result": None if problem else results_for(len(model), sha),
                "arena_used": None if problem else arena_used(sha)}
            st.put_model(sha, model)
            st.count("submissions", sha)
            st.data["counters"]["successful_submissions"] += 1
            st.save()
            return 201, self.request_json(st.data["requests"][rid])

    def status_of(self, req):
        o = self.server.opts
        if req["polls"] <= o.polls_pending:
            return "pending"
        if req["polls"] <= o.polls_pending + o.polls_processing:
            return "processing"
        return req["fate"]

    def request_json(self, req):
        status = self.status_of(req)
        out = {k: req[k] for k in ("id", "board", "quantize", "filename", "folder_name", "created_at", "updated_at")}
        out.update(status=status, error_message=req["error_message"] if status == "error" else None,
                   result=req["result"] if status == "done" else None)
        if status == "pending":
            same = [r for r in self.server.state.data["requests"].values()
                    if r["board"] == req["board"] and self.status_of(r) == "pending"]
            busy = sum(1 for r in self.server.state.data["requests"].values()
                       if r["board"] == req["board"] and self.status_of(r) == "processing")
            online = sum(1 for b in BOARDS if b[1] == req["board"] and b[7])
            out.update(queue_position=1 + sum(1 for r in same if r["id"] < req["id"]),
                       boards_busy=min(busy, online), boards_online=online)
        return out

    def own_request(self, user, rid):
        req = self.server.state.data["requests"].get(rid)
        if not req or req["user"] != user["username"]:
            raise Reply(404, {"message": "request %s not found" % rid})
        return req

    def list_requests(self, user):
        status = self.query.get("status", [None])[0]
        board = self.query.get("board", [None])[0]
        out = []
        for req in self.server.state.data["requests"].values():
            if req["user"] != user["username"] or (board and req["board"] != board):
                continue
            j = self.request_json(req)
            if not status or j["status"] == status:
                out.append(j)
        return 200, out

    def poll(self, req):
        st = self.server.state
        with st.lock:
            before = self.status_of(req)
            req["polls"] += 1
            if self.status_of(req) != before:
                req["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            st.save()
            return 200, self.request_json(req)

    def patch(self, req):
        if self.status_of(req) != "pending":
            raise Reply(400, {"message": "only a pending request can be changed"})
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            fields = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in json.loads(self.body).items()}
        else:
            fields = {k: v[0].decode() for k, v in parse_form(ctype, self.body).items()}
        st = self.server.state
        with st.lock:
            if "board" in fields:
                if fields["board"] not in BOARD_TYPES:
                    raise Reply(400, {"message": "unknown board '%s'" % fields["board"]})
                req["board"] = fields["board"]
            if "quantize" in fields:
                req["quantize"] = fields["quantize"] == "true"
            st.save()
            return 200, self.request_json(req)

    def delete(self, req):
        st = self.server.state
        with st.lock:
            del st.data["requests"][str(req["id"])]
            st.save()
        return 200, {"message": "request %d deleted" % req["id"]}

    def artifact(self, req, name):
        status = self.status_of(req)
        if status in ("pending", "processing"):
            raise Reply(404, {"message": "artifact '%s' not ready" % name})
        if name == "model":
            return 200, self.server.state.get_model(req["sha256"])
        if status == "error" and name == "error_log":
            return 200, ("pipeline log of request %d\nERROR %s\n" % (req["id"], req["error_message"])).encode()
        if status == "done":
            res = req["result"]
            if name == "ram_report":
                return 200, json.dumps({"total": res["ram_usage"]}).encode()
            if name == "rom_report":
                return 200, json.dumps({"total": res["rom_usage"]}).encode()
            if name == "power_summary":
                return 200, ("avg_current_uA,avg_power_uW\n%s,%s\n" % (res["avg_current_uA"], res["avg_power_uW"])).encode()
            if name == "uart_log":
                return 200, ("*** Booting nRF Connect SDK ***\nmodel: %s (%d bytes)\narena_used: %d bytes\n"
                             "inference 1: %.3f ms\n" % (req["filename"], req["size"], req["arena_used"],
                                                        res["duration_avg_s"] * 1000)).encode()
        raise Reply(404, {"message": "artifact '%s' not available" % name})

    # ---- the generic protocol -----------------------------------------------------------

    def jobs(self, method, path):
        user = self.user(scheme="Bearer ")
        st = self.server.state
        if path == "/jobs" and method == "POST":
            form = self.model_form("model")
            model, filename = form["model"]
            target = form.get("target", (b"", None))[0].decode()
            if not target:
                raise Reply(400, {"message": "missing field 'target'"})
            try:
                options = json.loads(form.get("options", (b"{}", None))[0] or b"{}")
            except ValueError:
                raise Reply(400, {"message": "'options' is not JSON"})
            key = form.get("key", (b"", None))[0].decode()
            with st.lock:
                if key and key in st.data["job_keys"]:
                    return 200, {"id": st.data["job_keys"][key]}
                jid = "job-%d" % st.data["next_id"]
                st.data["next_id"] += 1
                sha = hashlib.sha256(model).hexdigest()
                fail = target == "broken" or b"FLASH_FAIL" in model
                st.data["jobs"][jid] = {"id": jid, "user": user["username"], "target": target, "options": options,
                                        "filename": filename, "sha256": sha, "size": len(model), "polls": 0,
                                        "fate": "error" if fail else "done"}
                if key:
                    st.data["job_keys"][key] = jid
                st.count("job_submissions", sha)
                st.save()
                return 201, {"id": jid}
        m = re.fullmatch(r"/jobs/([^/]+)", path)
        job = st.data["jobs"].get(m.group(1)) if m else None
        if not job or job["user"] != user["username"]:
            raise Reply(404, {"message": "no such job"})
        if method == "DELETE":
            with st.lock:
                del st.data["jobs"][job["id"]]
                st.save()
            return 200, {}
        if method != "GET":
            raise Reply(405, {"message": "method not allowed"})
        with st.lock:
            job["polls"] += 1
            st.save()
        return 200, self.job_json(job)

    def job_json(self, job):
        o = self.server.opts
        status = ("queued" if job["polls"] <= o.polls_pending else
                  "running" if job["polls"] <= o.polls_pending + o.polls_processing else job["fate"])
        out = {"id": job["id"], "status": status, "message": "", "results": []}
        if status == "error":
            out["message"] = "target '%s' failed: device not responding" % job["target"]
        if status == "done":
            r = results_for(job["size"], job["sha256"])
            out["results"] = [{"metric": "latency_ms", "value": r["duration_avg_s"] * 1000, "unit": "ms"},
                              {"metric": "energy_uj", "value": r["avg_energy_uJ"], "unit": "uJ"},
                              {"metric": "rom_bytes", "value": r["rom_usage"], "unit": "bytes"},
                              {"metric": "power_mw", "value": None, "unit": "mW"}]
        return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--prefix", default="", help="path prefix of every endpoint, e.g. /api")
    p.add_argument("--token", action="append", default=[], help="a user with this API token")
    p.add_argument("--user", action="append", default=[], help="NAME:PASSWORD, a user who can log in")
    p.add_argument("--runs", type=int, default=1000, help="available runs of each user")
    p.add_argument("--state", help="JSON file holding the state across restarts")
    p.add_argument("--fault-rate", type=float, default=0.0, help="fraction of API calls given a random fault")
    p.add_argument("--fault-kinds", default=",".join(RANDOM_KINDS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slow-s", type=float, default=2.0, help="delay of a 'slow' answer")
    p.add_argument("--polls-pending", type=int, default=1)
    p.add_argument("--polls-processing", type=int, default=1)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args()
    kinds = [k for k in opts.fault_kinds.split(",") if k]
    unknown = [k for k in kinds if k not in PRE_KINDS | POST_KINDS]
    if unknown:
        p.error("unknown fault kind(s): %s" % ", ".join(unknown))

    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    server.daemon_threads = True
    server.opts = opts
    server.state = State(opts.state, opts)
    server.faults = Faults(opts.fault_rate, kinds, opts.seed)
    if opts.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.tls[0], opts.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
