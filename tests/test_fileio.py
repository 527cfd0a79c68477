"""dense_adapters.fileio: files get the umask's permissions, write failures are one line, one run per work dir,
and the temporary files of a killed write are removed by the next run."""
import os
import signal
import subprocess
import sys
import time

import pytest

from dense_adapters.cli.core import run_cli
from dense_adapters.errors import StorageError
from dense_adapters.fileio import LOCK_NAME, atomic_write, lock_work_dir, stale_temporaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_umask_permissions(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(str(tmp_path / "ckpt.pth"), b"data")  # new file
        atomic_write(str(tmp_path / "ckpt.pth"), b"more")  # replaced
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "ckpt.pth").st_mode & 0o777 == mode  # mkstemp gave 0600 whatever the umask
    assert (tmp_path / "ckpt.pth").read_bytes() == b"more" and not stale_temporaries(str(tmp_path))


def test_unwritable_places_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match=r"^cannot write .*file/ckpt.pth: File exists: a file stands where a "
                                           r"folder is needed"):
        atomic_write(str(tmp_path / "file" / "ckpt.pth"), b"x")
    with pytest.raises(StorageError, match=r"^the work dir .*file is a file, not a folder: remove it or choose"):
        with lock_work_dir(str(tmp_path / "file")):
            pass
    with pytest.raises(StorageError, match=r"^cannot create the work dir /sys/dense_adapters_test/w: Operation not "
                                           r"permitted: make the folder writable or choose another one"):
        with lock_work_dir("/sys/dense_adapters_test/w"):  # /sys refuses new folders, also to root
            pass


FULL = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # a disk that is full after 100 kB
from dense_adapters.cli.core import run_cli
from dense_adapters.fileio import atomic_write
sys.exit(run_cli(lambda: atomic_write({path!r}, b"x" * 1_000_000)))
"""


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    path = str(tmp_path / "iter_4.pth")
    res = subprocess.run([sys.executable, "-c", FULL.format(path=path)], capture_output=True, text=True, env=ENV,
                         timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == (f"error: cannot write {path}: File too large: free space (or raise the quota / "
                                  "file-size limit) or write elsewhere")
    assert os.listdir(tmp_path) == []  # neither the target nor the temporary file


HOLD = """
import sys, time
from dense_adapters.fileio import lock_work_dir
with lock_work_dir({path!r}):
    open({ready!r}, "w").close()
    time.sleep(120)
"""


def test_second_run_on_a_work_dir_is_refused_until_the_first_is_gone(tmp_path):
    work, ready = str(tmp_path / "work"), str(tmp_path / "ready")
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(path=work, ready=ready)], env=ENV)
    try:
        t0 = time.time()
        while not os.path.exists(ready):
            assert proc.poll() is None and time.time() - t0 < 60
            time.sleep(0.05)
        with pytest.raises(StorageError, match=rf"^the work dir {work} is in use by another run \(pid {proc.pid} on "
                                               r".*, since .*\): wait for it to end, or pass another --work-dir$"):
            with lock_work_dir(work):
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a killed run leaves its lock file but not the lock
        proc.wait()
    assert os.path.exists(os.path.join(work, LOCK_NAME))
    with lock_work_dir(work) as lock:
        assert lock == os.path.join(work, LOCK_NAME)


def test_run_cli_prints_storage_errors_in_one_line(capsys):
    def fail():
        raise StorageError("cannot write x: No space left on device: free space")

    assert run_cli(fail) == 2
    assert capsys.readouterr().err == "error: cannot write x: No space left on device: free space\n"
