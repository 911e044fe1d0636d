"""Shipping artefacts: docker-compose.yml, the Kubernetes manifests, the Dockerfile, the loader."""

from __future__ import annotations

import http.server
import importlib.util
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from cds_service.api.routes import STORAGE_PING_TIMEOUT_S
from cds_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOADER = ROOT / "deploy" / "load_fixtures.py"
# Kubernetes versions the manifests must validate against (oldest supported, newest bundled).
K8S_VERSIONS = ("1.29", "1.33")

SETTING_ENV_NAMES = {f"CDS_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


# ---------------------------------------------------------------- docker-compose.yml


def test_compose_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"cds", "fhir", "fhir-loader", "db", "redis"}
    assert "version" not in compose  # compose-spec form, read by v1.27+ and v2


def test_compose_cds_service(compose: dict[str, Any]) -> None:
    cds = compose["services"]["cds"]
    assert cds["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / cds["build"]["context"] / cds["build"]["dockerfile"]).is_file()
    assert cds["ports"] == ["8080:8080"]
    env = _env(cds)
    assert env["CDS_DATABASE_URL"].startswith("postgresql+psycopg://cds:")
    assert "@db:5432/cds" in env["CDS_DATABASE_URL"]
    assert env["CDS_FHIR_SERVERS"] == "http://fhir:8080/fhir"
    assert env["CDS_ALLOW_INSECURE_FHIR"] == "true"
    assert env["CDS_AUTH"] == "off"
    # Every variable is a real setting: a typo would be silently ignored (extra="ignore").
    assert set(env) <= SETTING_ENV_NAMES
    assert cds["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(cds["healthcheck"]["test"])


def test_compose_auth_off_is_explained() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    line = next(i for i, ln in enumerate(text.splitlines()) if "CDS_AUTH:" in ln)
    context = "\n".join(text.splitlines()[max(0, line - 3) : line]).lower()
    assert "local" in context


def test_compose_fhir_and_loader(compose: dict[str, Any]) -> None:
    services = compose["services"]
    fhir = services["fhir"]
    assert fhir["image"].startswith("hapiproject/hapi:")
    assert fhir["ports"] == ["8090:8080"]
    assert fhir["healthcheck"]["test"][0] == "CMD"
    assert "/fhir/metadata" in " ".join(fhir["healthcheck"]["test"])
    loader = services["fhir-loader"]
    assert loader["image"] == "python:3.11-slim"
    assert "/deploy/load_fixtures.py" in loader["command"]
    assert loader["depends_on"]["fhir"]["condition"] == "service_healthy"
    for service in (fhir, loader):
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0]
            if host.startswith("./deploy/"):
                assert (ROOT / host).is_file(), host


def test_compose_db(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    env = _env(db)
    assert {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"} <= set(env)
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pgdata" in compose["volumes"]


def test_compose_redis_is_shared_state_of_the_service(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    cds = compose["services"]["cds"]
    env = _env(cds)
    assert env["CDS_REDIS_URL"] == "redis://redis:6379/0"
    assert env["CDS_REDIS_KEY_PREFIX"]
    assert cds["depends_on"]["redis"]["condition"] == "service_healthy"


def test_every_service_has_a_healthcheck_except_the_one_shot_loader(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        assert ("healthcheck" in service) == (name != "fhir-loader"), name


def test_docker_compose_v1_validates_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(  # noqa: S603
        [binary, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="module")
def kv() -> ModuleType:
    module: ModuleType = pytest.importorskip(
        "kubernetes_validate.utils", reason="kubernetes-validate is not installed"
    )
    return module


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


MANIFESTS = _manifests()


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in MANIFESTS if doc["kind"] == kind]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_expected_kinds_present() -> None:
    kinds = sorted(doc["kind"] for _, doc in MANIFESTS)
    for kind in (
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ):
        assert kind in kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("name", "doc"), MANIFESTS, ids=[n for n, _ in MANIFESTS])
def test_manifest_matches_kubernetes_schema(
    kv: ModuleType, name: str, doc: dict[str, Any], version: str
) -> None:
    # strict: unknown fields (typos) fail too; the schemas ship in the wheel, no network.
    kv.validate(doc, version, strict=True)


def test_validator_rejects_a_typo(kv: ModuleType) -> None:
    deployment = json.loads(json.dumps(_by_kind("Deployment")[0]))
    deployment["spec"]["replicass"] = deployment["spec"].pop("replicas")
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_deployment_shape() -> None:
    (deployment,) = _by_kind("Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # No probe depends on the database: its outage must not take every replica out of service.
    probes = ("readinessProbe", "livenessProbe", "startupProbe")
    assert all("storage" not in container[p]["httpGet"]["path"] for p in probes)
    # /readyz bounds its storage ping: the probe must not time out first.
    assert container["readinessProbe"]["timeoutSeconds"] > STORAGE_PING_TIMEOUT_S
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")  # noqa: S108
    volume = next(v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume
    assert pod["terminationGracePeriodSeconds"] > 10
    assert "preStop" in container["lifecycle"]
    # envFrom names resolve to the ConfigMap and Secret defined here.
    refs = {next(iter(e)): next(iter(e.values()))["name"] for e in container["envFrom"]}
    assert refs["configMapRef"] in {d["metadata"]["name"] for d in _by_kind("ConfigMap")}
    assert refs["secretRef"] in {d["metadata"]["name"] for d in _by_kind("Secret")}
    # Selectors of Service, PDB and HPA target this Deployment's pods.
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (service,) = _by_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    (pdb,) = _by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (hpa,) = _by_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2


def test_config_and_secret_keys_are_settings() -> None:
    settings_maps = [d for d in _by_kind("ConfigMap") if d["metadata"]["name"].endswith("-config")]
    (config,) = settings_maps
    assert set(config["data"]) <= SETTING_ENV_NAMES
    assert config["data"]["CDS_AUTH"] == "required"
    (secret,) = _by_kind("Secret")
    assert set(secret["stringData"]) <= SETTING_ENV_NAMES
    assert "CDS_DATABASE_URL" in secret["stringData"]
    # Placeholders only: nothing that looks like a real credential is committed.
    assert all("CHANGE-ME" in value for value in secret["stringData"].values())


def test_redis_is_configured_and_documented_as_external() -> None:
    (secret,) = _by_kind("Secret")
    assert secret["stringData"]["CDS_REDIS_URL"].startswith("rediss://")
    (config,) = [d for d in _by_kind("ConfigMap") if d["metadata"]["name"].endswith("-config")]
    assert config["data"]["CDS_REDIS_KEY_PREFIX"]
    assert config["data"]["CDS_OPENAPI"] == "false"
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    assert "Redis is external" in readme
    assert "replay cache unavailable" in readme
    assert not any("redis" in doc["metadata"]["name"] for _, doc in MANIFESTS)
    # /readyz pings storage and then Redis: both bounds fit in the readiness probe's timeout.
    (deployment,) = _by_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    budget = STORAGE_PING_TIMEOUT_S + Settings.model_fields["redis_timeout_s"].default
    assert container["readinessProbe"]["timeoutSeconds"] > budget


def test_postgres_is_documented_as_external() -> None:
    text = (K8S / "README.md").read_text(encoding="utf-8") + (K8S / "kustomization.yaml").read_text(
        encoding="utf-8"
    )
    assert "PostgreSQL is external" in text or "PostgreSQL is NOT part" in text
    assert not any(
        "postgres" in doc["metadata"]["name"] for _, doc in MANIFESTS if doc["kind"] != "Secret"
    )


# ---------------------------------------------------------------- Dockerfile


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_on_slim_python() -> None:
    froms = [args for kw, args in _instructions() if kw == "FROM"]
    assert len(froms) >= 2
    assert froms[-1].split()[0] == "python:3.11-slim"
    assert any("--from=builder" in args for kw, args in _instructions() if kw == "COPY")


def test_dockerfile_runs_as_non_root() -> None:
    instructions = _instructions()
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    users = [args for kw, args in instructions[last_from:] if kw == "USER"]
    assert users
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_healthcheck_and_command() -> None:
    instructions = dict(_instructions())
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert "python" in instructions["HEALTHCHECK"]
    command = json.loads(instructions["ENTRYPOINT"]) + json.loads(instructions["CMD"])
    assert command == ["cds-service", "serve", "--host", "0.0.0.0", "--port", "8080"]  # noqa: S104
    assert "CDS_HOOKS_DIR=/app/hooks" in instructions["ENV"]
    assert any(kw == "COPY" and args.startswith("hooks ") for kw, args in _instructions())


def test_dockerfile_installs_no_dev_tools() -> None:
    runs = " ".join(args for kw, args in _instructions() if kw == "RUN")
    assert 'pip install -c constraints.txt ".[postgres]"' in runs
    assert "dev" not in runs.replace("/dev/", "")
    assert "curl" not in runs
    assert "wget" not in runs
    assert "apt-get install" not in runs


# ---------------------------------------------------------------- fixture loader


@pytest.fixture(scope="module")
def loader() -> ModuleType:
    spec = importlib.util.spec_from_file_location("load_fixtures", LOADER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def fixtures_dir(tmp_path: Path) -> Path:
    case = tmp_path / "fixtures" / "svc" / "case-a"
    patient = {"resourceType": "Patient", "id": "pt-a"}
    condition = {"resourceType": "Condition", "id": "cond-a"}
    _write(
        case / "request.json",
        {
            "hook": "patient-view",
            "prefetch": {
                "patient": patient,
                "conditions": {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [{"resource": condition}],
                },
                "observations": None,
                "failed": {"resourceType": "OperationOutcome", "id": "oo"},
            },
        },
    )
    _write(
        case / "fhir" / "observations.json",
        {"Observation?patient=pt-a": [{"resourceType": "Observation", "id": "obs-a"}]},
    )
    _write(tmp_path / "fixtures" / "svc" / "case-b" / "fhir" / "p.json", patient)
    return tmp_path / "fixtures"


def test_loader_collects_resources_per_case(loader: ModuleType, fixtures_dir: Path) -> None:
    cases = loader.case_dirs(fixtures_dir)
    assert [c.name for c in cases] == ["case-a", "case-b"]
    found = {(r["resourceType"], r["id"]) for r in loader.case_resources(cases[0])}
    assert found == {("Patient", "pt-a"), ("Condition", "cond-a"), ("Observation", "obs-a")}
    bundle = loader.transaction(loader.case_resources(cases[1]))
    assert bundle["type"] == "transaction"
    assert bundle["entry"][0]["request"] == {"method": "PUT", "url": "Patient/pt-a"}


class _FakeFHIR(http.server.BaseHTTPRequestHandler):
    posted: list[dict[str, Any]] = []  # noqa: RUF012

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/fhir/metadata" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.posted.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"resourceType": "Bundle", "type": "transaction-response"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_fhir() -> Iterator[str]:
    _FakeFHIR.posted = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeFHIR)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_loader_posts_one_transaction_per_case(
    loader: ModuleType, fixtures_dir: Path, fake_fhir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = loader.main(["--fhir-base", fake_fhir, "--fixtures", str(fixtures_dir)])
    assert code == 0
    assert len(_FakeFHIR.posted) == 2
    assert all(b["type"] == "transaction" for b in _FakeFHIR.posted)
    assert "case-a: 3 resources -> HTTP 200" in capsys.readouterr().out


def test_loader_gives_up_when_the_server_never_answers(loader: ModuleType, tmp_path: Path) -> None:
    code = loader.main(
        [
            "--fhir-base",
            "http://127.0.0.1:9/fhir",
            "--fixtures",
            str(tmp_path),
            "--wait-seconds",
            "0",
        ]
    )
    assert code == 1
