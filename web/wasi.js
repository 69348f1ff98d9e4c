// A WASI preview 1 host for dice-web.wasm, in the page: an in-memory file system (the files
// the user dropped, never sent anywhere), arguments, standard output and error captured as
// bytes. Only the calls Rust's std makes for dice eval are implemented; the rest answer
// ENOSYS. Each run instantiates the module afresh (a WASI command runs _start once).
"use strict";

const E = { SUCCESS: 0, BADF: 8, EXIST: 20, INVAL: 28, ISDIR: 31, NOENT: 44, NOSYS: 52, NOTDIR: 54, NOTSUP: 58 };
const FT = { CHAR: 2, DIR: 3, FILE: 4 };

class ExitError extends Error {
  constructor(code) { super("exit " + code); this.code = code; }
}

// files: Map from an absolute path ("/pred/a.nii.gz") to a Uint8Array. Directories are the
// prefixes of the paths (and any created).
function runWasi(module, args, files) {
  const dirs = new Set(["/", "/out"]);
  for (const p of files.keys()) {
    const parts = p.split("/").slice(1, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add("/" + parts.slice(0, i).join("/"));
  }
  const inodes = new Map();
  let nextIno = 10;
  const ino = (p) => { if (!inodes.has(p)) inodes.set(p, nextIno++); return inodes.get(p); };
  const out = [], err = [];
  // fd table: 0-2 stdio, 3 the preopened "/".
  const fds = new Map([[0, { kind: "std" }], [1, { kind: "std", sink: out }], [2, { kind: "std", sink: err }],
    [3, { kind: "dir", path: "/" }]]);
  let nextFd = 4;
  let memory;
  const enc = new TextEncoder(), dec = new TextDecoder();
  const view = () => new DataView(memory.buffer);
  const bytes = () => new Uint8Array(memory.buffer);
  const str = (ptr, len) => dec.decode(bytes().subarray(ptr, ptr + len));
  const norm = (base, rel) => {
    const parts = [];
    for (const s of (base + "/" + rel).split("/")) {
      if (s === "" || s === ".") continue;
      if (s === "..") { if (parts.length === 0) return null; parts.pop(); } else parts.push(s);
    }
    return "/" + parts.join("/");
  };
  const resolve = (fd, ptr, len) => {
    const d = fds.get(fd);
    if (!d || d.kind !== "dir") return null;
    return norm(d.path === "/" ? "" : d.path, str(ptr, len));
  };
  const writeStat = (buf, path, type, size) => {
    const v = view();
    v.setBigUint64(buf, 1n, true);
    v.setBigUint64(buf + 8, BigInt(ino(path)), true);
    v.setUint8(buf + 16, type);
    v.setBigUint64(buf + 24, 1n, true);
    v.setBigUint64(buf + 32, BigInt(size), true);
    for (const o of [40, 48, 56]) v.setBigUint64(buf + o, 0n, true);
  };
  const argv = args.map((a) => enc.encode(a + "\0"));
  const imp = {
    args_sizes_get(c, s) { const v = view(); v.setUint32(c, argv.length, true); v.setUint32(s, argv.reduce((n, a) => n + a.length, 0), true); return 0; },
    args_get(ptrs, buf) {
      const v = view();
      argv.forEach((a, i) => { v.setUint32(ptrs + 4 * i, buf, true); bytes().set(a, buf); buf += a.length; });
      return 0;
    },
    environ_sizes_get(c, s) { const v = view(); v.setUint32(c, 0, true); v.setUint32(s, 0, true); return 0; },
    environ_get() { return 0; },
    random_get(ptr, len) { crypto.getRandomValues(bytes().subarray(ptr, ptr + len)); return 0; },
    clock_time_get(id, prec, out) { view().setBigUint64(out, BigInt(Math.round(performance.now() * 1e6)), true); return 0; },
    proc_exit(code) { throw new ExitError(code); },
    sched_yield() { return 0; },
    fd_prestat_get(fd, buf) {
      if (fd !== 3) return E.BADF;
      const v = view(); v.setUint8(buf, 0); v.setUint32(buf + 4, 1, true); return 0;
    },
    fd_prestat_dir_name(fd, ptr, len) { if (fd !== 3) return E.BADF; bytes()[ptr] = 47; return 0; },
    fd_fdstat_get(fd, buf) {
      const d = fds.get(fd);
      if (!d) return E.BADF;
      const v = view();
      v.setUint8(buf, d.kind === "std" ? FT.CHAR : d.kind === "dir" ? FT.DIR : FT.FILE);
      v.setUint16(buf + 2, 0, true);
      v.setBigUint64(buf + 8, 0xffffffffn, true);
      v.setBigUint64(buf + 16, 0xffffffffn, true);
      return 0;
    },
    fd_fdstat_set_flags() { return 0; },
    fd_filestat_get(fd, buf) {
      const d = fds.get(fd);
      if (!d) return E.BADF;
      if (d.kind === "std") { writeStat(buf, "<std" + fd + ">", FT.CHAR, 0); return 0; }
      if (d.kind === "dir") { writeStat(buf, d.path, FT.DIR, 0); return 0; }
      writeStat(buf, d.path, FT.FILE, files.get(d.path).length); return 0;
    },
    path_filestat_get(fd, flags, ptr, len, buf) {
      const p = resolve(fd, ptr, len);
      if (p === null) return E.NOENT;
      if (files.has(p)) { writeStat(buf, p, FT.FILE, files.get(p).length); return 0; }
      if (dirs.has(p)) { writeStat(buf, p, FT.DIR, 0); return 0; }
      return E.NOENT;
    },
    path_open(fd, dirflags, ptr, len, oflags, rb, ri, fdflags, outFd) {
      const p = resolve(fd, ptr, len);
      if (p === null) return E.NOENT;
      const creat = oflags & 1, directory = oflags & 2, excl = oflags & 4, trunc = oflags & 8;
      if (dirs.has(p)) {
        if (creat && excl) return E.EXIST;
        const n = nextFd++; fds.set(n, { kind: "dir", path: p }); view().setUint32(outFd, n, true); return 0;
      }
      if (directory) return files.has(p) ? E.NOTDIR : E.NOENT;
      if (files.has(p)) {
        if (creat && excl) return E.EXIST;
        if (trunc) files.set(p, new Uint8Array(0));
      } else {
        if (!creat) return E.NOENT;
        if (!dirs.has(p.slice(0, p.lastIndexOf("/")) || "/")) return E.NOENT;
        files.set(p, new Uint8Array(0));
      }
      const n = nextFd++;
      fds.set(n, { kind: "file", path: p, pos: 0, append: (fdflags & 1) !== 0 });
      view().setUint32(outFd, n, true);
      return 0;
    },
    fd_close(fd) { if (!fds.has(fd)) return E.BADF; fds.delete(fd); return 0; },
    fd_sync() { return 0; },
    fd_datasync() { return 0; },
    fd_advise() { return 0; },
    fd_read(fd, iovs, n, nread) {
      const d = fds.get(fd);
      if (!d) return E.BADF;
      const v = view();
      if (d.kind !== "file") { v.setUint32(nread, 0, true); return d.kind === "dir" ? E.ISDIR : 0; }
      const data = files.get(d.path);
      let total = 0;
      for (let i = 0; i < n; i++) {
        const ptr = v.getUint32(iovs + 8 * i, true), len = v.getUint32(iovs + 8 * i + 4, true);
        const chunk = data.subarray(d.pos, Math.min(data.length, d.pos + len));
        bytes().set(chunk, ptr);
        d.pos += chunk.length; total += chunk.length;
        if (chunk.length < len) break;
      }
      v.setUint32(nread, total, true);
      return 0;
    },
    fd_write(fd, iovs, n, nwritten) {
      const d = fds.get(fd);
      if (!d || d.kind === "dir") return E.BADF;
      const v = view();
      let total = 0;
      for (let i = 0; i < n; i++) {
        const ptr = v.getUint32(iovs + 8 * i, true), len = v.getUint32(iovs + 8 * i + 4, true);
        const chunk = bytes().slice(ptr, ptr + len);
        total += len;
        if (d.kind === "std") { if (d.sink) d.sink.push(chunk); continue; }
        let data = files.get(d.path);
        if (d.append) d.pos = data.length;
        if (d.pos + len > data.length) {
          const grown = new Uint8Array(Math.max(d.pos + len, data.length * 2));
          grown.set(data); data = grown.subarray(0, d.pos + len); files.set(d.path, data);
        }
        data.set(chunk, d.pos); d.pos += len;
      }
      v.setUint32(nwritten, total, true);
      return 0;
    },
    fd_seek(fd, offset, whence, out) {
      const d = fds.get(fd);
      if (!d || d.kind !== "file") return E.BADF;
      const size = files.get(d.path).length;
      const base = whence === 0 ? 0 : whence === 1 ? d.pos : size;
      const pos = base + Number(offset);
      if (pos < 0) return E.INVAL;
      d.pos = pos;
      view().setBigUint64(out, BigInt(pos), true);
      return 0;
    },
    fd_tell(fd, out) { const d = fds.get(fd); if (!d || d.kind !== "file") return E.BADF; view().setBigUint64(out, BigInt(d.pos), true); return 0; },
    fd_readdir(fd, buf, len, cookie, used) { view().setUint32(used, 0, true); return 0; },
    path_readlink() { return E.INVAL; },
    path_link() { return E.NOTSUP; },
    path_rename(fd, p1, l1, fd2, p2, l2) {
      const a = resolve(fd, p1, l1), b = resolve(fd2, p2, l2);
      if (a === null || b === null || !files.has(a)) return E.NOENT;
      files.set(b, files.get(a)); files.delete(a); return 0;
    },
    path_unlink_file(fd, ptr, len) {
      const p = resolve(fd, ptr, len);
      if (p === null || !files.has(p)) return E.NOENT;
      files.delete(p); return 0;
    },
    path_create_directory(fd, ptr, len) { const p = resolve(fd, ptr, len); if (p === null) return E.NOENT; dirs.add(p); return 0; },
  };
  const wasi = new Proxy(imp, { get: (t, k) => t[k] || (() => E.NOSYS) });
  const inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi });
  memory = inst.exports.memory;
  let code = 0;
  try {
    inst.exports._start();
  } catch (e) {
    if (e instanceof ExitError) code = e.code; else throw e;
  }
  const join = (parts) => {
    const all = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of parts) { all.set(c, o); o += c.length; }
    return dec.decode(all);
  };
  return { code, stdout: join(out), stderr: join(err), files };
}
