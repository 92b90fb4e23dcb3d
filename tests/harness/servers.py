"""The other servers the harness starts: nginx with its upload progress
module (or as a cheap sink), Apache with mod_upload_progress, and the
bench's body-reading backend (body_sink.py).  Each runs from a throw-away
folder in its own session (processes.Spawned), on a free port of
127.0.0.1, with one worker process."""
import os
import sys
import tempfile
from pathlib import Path

from .processes import Spawned, free_port, tail, wait_listening

HERE = Path(__file__).resolve().parent
NGINX = "/usr/sbin/nginx"
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_http_uploadprogress_module.so"
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
# The static file every server of the bench has, the anchor of its lines.
TINY_JSON = b'{"state":"starting"}\n'


def server_dir(root, name):
    """A new folder for a server under root, readable by its workers, with
    www/tiny.json."""
    path = Path(tempfile.mkdtemp(prefix=name + ".", dir=root))
    www = path / "www"
    www.mkdir()
    (www / "tiny.json").write_bytes(TINY_JSON)
    for p, mode in ((path, 0o755), (www, 0o755), (www / "tiny.json", 0o644)):
        os.chmod(p, mode)
    return path


class Server:
    """A server of ours to start and stop: command() says how; prefix is
    what it runs under (taskset)."""
    name = "?"

    def __init__(self, root, prefix=()):
        self.prefix = list(prefix)
        self.dir = server_dir(root, self.name)
        self.port = free_port()
        self.process = None
        self.log = self.dir / "out.log"

    @property
    def proc(self):
        return self.process.proc

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        self.process = Spawned(self.prefix + self.command(), self.log, cwd=self.dir)
        try:
            wait_listening(self.proc, self.port, self.name, self.log, timeout=60)
        except RuntimeError as e:
            raise RuntimeError("%s\n%s" % (e, tail(self.dir / "error.log"))) from None
        return self

    def stop(self):
        if self.process:
            self.process.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Nginx(Server):
    """nginx-light with the uploadprogress module, or (backend None) a cheap
    sink answering 200 to everything, also on the unix socket self.socket
    (lighttpd's proxy connects to that about twice as fast as to TCP)."""
    name = "nginx"

    def __init__(self, root, backend=None, prefix=()):
        super().__init__(root, prefix)
        body = self.dir / "body"
        body.mkdir()
        self.socket = self.dir / "sink.sock"
        if backend:
            http = """
    upload_progress uploads 64m;
    server {
        listen 127.0.0.1:%(port)d;
        root %(dir)s/www;
        location /upload { proxy_pass http://127.0.0.1:%(backend)d;
                           track_uploads uploads 60s; }
        location ^~ /progress { upload_progress_json_output;
                                report_uploads uploads; }
    }""" % {"port": self.port, "dir": self.dir, "backend": backend}
            load = "load_module %s;" % NGINX_MODULE
        else:
            http = """
    server {
        listen 127.0.0.1:%d;
        listen unix:%s;
        location / { return 200 "ok\\n"; }
    }""" % (self.port, self.socket)
            load = ""
        (self.dir / "nginx.conf").write_text("""%(load)s
daemon off; master_process on; worker_processes 1; user root;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_max_body_size 0;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/body;
    keepalive_requests 1000000;
    %(http)s
}
""" % {"load": load, "dir": self.dir, "http": http})

    def command(self):
        return [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]


class Apache(Server):
    """apache2 (mpm_event, one child process) with mod_upload_progress."""
    name = "apache"

    def __init__(self, root, backend, prefix=()):
        super().__init__(root, prefix)
        mods = ["mpm_event", "authz_core", "proxy", "proxy_http", "upload_progress"]
        load = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m)
                         for m in mods)
        (self.dir / "apache2.conf").write_text("""%(load)s
ServerRoot %(dir)s
ServerName 127.0.0.1
Listen 127.0.0.1:%(port)d
PidFile %(dir)s/apache2.pid
ErrorLog %(dir)s/error.log
Mutex file:%(dir)s default
User www-data
Group www-data
DocumentRoot %(dir)s/www
KeepAlive On
MaxKeepAliveRequests 0
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MinSpareThreads 1
MaxSpareThreads 64
MaxRequestWorkers 64
UploadProgressSharedMemorySize 16777216
<Location /upload>
    TrackUploads On
    ProxyPass http://127.0.0.1:%(backend)d/
</Location>
<Location /progress>
    ReportUploads On
</Location>
""" % {"load": load, "dir": self.dir, "port": self.port, "backend": backend})

    def command(self):
        return [APACHE, "-d", str(self.dir), "-f", str(self.dir / "apache2.conf"),
                "-DFOREGROUND"]


class BodySink(Server):
    """A body-reading backend (body_sink.py): reads each request's whole
    Content-Length body, answers 200."""
    name = "sink"

    def command(self):
        return [sys.executable, str(HERE / "body_sink.py"), str(self.port)]
