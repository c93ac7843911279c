"""Shared set-up of the File Copy tests: one hostd, one agent with
[filecopy] on and its own write and read directories, the service on."""
import hashlib
import os

from vmictest import Env, wait_until


def fc_conf(root, write=True, read=True, enabled=True):
    lines = ["[filecopy]", f"enabled = {'yes' if enabled else 'no'}"]
    if write:
        lines.append(f"write-dirs = {root}/in")
    if read:
        lines.append(f"read-dirs = {root}/out")
    return "\n".join(lines) + "\n"


def setup(tap, name="vm1", enable=True, conf=None, hostd_conf=None):
    env = Env(tap)
    env.start_hostd(conf=hostd_conf)
    for sub in ("in", "out", "host"):
        os.makedirs(os.path.join(env.dir, sub), exist_ok=True)
    guest = env.start_guest(name, conf=conf if conf is not None else fc_conf(env.dir))
    env.add(name)
    env.wait_heartbeat(name, "OK", 15)
    if enable:
        env.vmic("enable", name, "filecopy", check=True)
        wait_until(lambda: (env.service(name, "filecopy") or {}).get("primary_status") == "OK", 10)
    return env, guest


def ready(env, name="vm1", timeout=15):
    """The session is up (a new one after a restart) and File Copy OK."""
    def up():
        st = env.status(name)
        c = st.get("connection")
        state = c.get("state") if isinstance(c, dict) else c
        svc = [s for s in st.get("services", []) if s.get("name") == "filecopy"]
        return state == "connected" and svc and svc[0].get("primary_status") == "OK"
    return wait_until(up, timeout)


def write_file(path, size, seed=0):
    """size bytes that differ per position and per seed."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            chunk = block[i % 7:] + block[: i % 7]
            f.write(chunk[:left])
            left -= min(left, len(chunk))
            i += 1


def same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def temporaries(*dirs):
    """Every temporary of a copy left beneath dirs."""
    found = []
    for d in dirs:
        for root, _, files in os.walk(d):
            found += [os.path.join(root, f) for f in files if f.startswith(".vmic-copy-")]
    return found


def start_guest_wrapped(env, name, conf, prefix):
    """Env.start_guest with the agent's command line behind `prefix` (a
    private mount namespace, another user)."""
    import vmictest
    conf_path = os.path.join(env.dir, f"{name}.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    path = env.guest_socket(name)
    if os.path.exists(path):
        os.unlink(path)
    kvp = os.path.join(env.dir, f"{name}-kvp")
    os.makedirs(kvp, exist_ok=True)
    os.chmod(kvp, 0o777)
    log_path = os.path.join(env.dir, f"guest-{name}.log")
    readies = vmictest.ready_lines(log_path)
    p = vmictest.Proc(f"guest-{name}", [*prefix, vmictest.GUESTD, "--config", conf_path,
                                        "--channel", f"unix-listen:{path}",
                                        "--log-level", "debug", "--kvp-dir", kvp,
                                        *vmictest.GUEST_CLOCK_ARGS], log_path)
    env.procs.append(p)
    if not wait_until(lambda: vmictest.ready_lines(log_path) > readies or not p.alive(), 10) \
            or not p.alive():
        raise RuntimeError(f"vmic-guestd {name} did not start:\n" + p.output())
    return p
