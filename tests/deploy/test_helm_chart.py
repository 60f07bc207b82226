"""The Helm chart in deploy/helm/nmbrs-sync: rendered by the real Helm CLI (built by deploy/local/helm.sh, or
HELM_BIN) with its default values and with examples/production.yaml, every Kubernetes object valid for the
API of a recent Kubernetes (kubernetes-validate, strict), the Prometheus Operator's objects in their shape,
probes and security context as the worker and the web app need them, and every environment variable one
that worker.config.Settings reads: a rendered production pod's environment loads as the application's
settings. No cluster, database or broker needed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO
from worker.config import Settings, Topics

CHART = REPO / "deploy" / "helm" / "nmbrs-sync"
PRODUCTION = CHART / "examples" / "production.yaml"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
# The copy the PrometheusRule embeds (test_the_charts_alert_rules_are_those_of_deploy_prometheus keeps it equal).
CHART_ALERTS = CHART / "files" / "alerts.yaml"
DEFAULT_JOBS = {"worker": "nmbrs-sync-worker", "web": "nmbrs-sync-web"}
# ./dev exports HELM_BIN (deploy/local/helm.sh builds it into the user's cache, shared by every clone).
HELM = Path(os.environ.get("HELM_BIN") or Path.home() / ".cache" / "nmbrs-sync" / "tools" / "bin" / "helm")
KUBERNETES_VERSION = "1.35.0"
SECRETS_DIR = "/etc/nmbrs-sync/secrets"
# Custom resources of the Prometheus Operator: not in the Kubernetes API that kubernetes-validate knows.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}

Doc = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        # A failure, not a skip: CI must never pass without having rendered the chart.
        pytest.fail(f"the Helm CLI is missing at {HELM}: ./dev test builds it (ensure_helm), or set HELM_BIN")
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60, check=False)


def render(*values: Path, sets: tuple[str, ...] = ()) -> list[Doc]:
    args = ["template", "nmbrs-sync", str(CHART), "--namespace", "payroll", "--kube-version", KUBERNETES_VERSION]
    for path in values:
        args += ["--values", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[Doc], kind: str, name_suffix: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"{kind} *{name_suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def kinds(docs: list[Doc]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs}


def container(deployment: Doc) -> Doc:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def settings_env_names() -> set[str]:
    """Every environment variable Settings reads: a field's name, and TOPICS__<NAME> for each topic."""
    names = {name.upper() for name in Settings.model_fields if name != "topics"}
    return names | {f"TOPICS__{name.upper()}" for name in Topics.model_fields}


def pod_environment(docs: list[Doc], deployment: Doc) -> dict[str, str]:
    """What the container's environment is: its ConfigMaps (envFrom) overlaid by its env."""
    env: dict[str, str] = {}
    for source in container(deployment).get("envFrom", []):
        config_map = one(docs, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map["data"])
    env.update({var["name"]: var["value"] for var in container(deployment).get("env", [])})
    return env


@pytest.fixture(scope="module")
def default_docs() -> list[Doc]:
    return render()


@pytest.fixture(scope="module")
def production_docs() -> list[Doc]:
    return render(PRODUCTION)


@pytest.fixture(scope="module")
def variant_docs() -> list[Doc]:
    """The other branches: mutual TLS to Kafka without SASL, the DSN in the Secret, the migration Job, proxy
    auth without the chart's NetworkPolicy (acknowledged)."""
    return render(
        sets=(
            "secrets.existingSecret=nmbrs-sync",
            "secrets.keys.databaseUrl=database-url",
            "kafka.securityProtocol=SSL",
            "kafka.tls.existingSecret=kafka-user",
            "kafka.tls.certKey=user.crt",
            "kafka.tls.keyKey=user.key",
            "migrations.job.enabled=true",
            "migrations.job.databaseUrl=postgresql://nmbrs_sync_owner@db:5432/nmbrs_sync",
            "migrations.job.passwordKey=owner-password",
            "web.auth=proxy",
            "web.acknowledgeProxyWithoutNetworkPolicy=true",
        )
    )


def test_the_chart_deploys_the_projects_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]


def test_helm_lint_passes_with_the_default_and_the_production_values() -> None:
    for extra in ((), ("--values", str(PRODUCTION))):
        result = helm("lint", "--strict", str(CHART), *extra)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("which", ["default", "production", "variant"])
def test_every_kubernetes_object_is_valid_for_the_api(
    which: str, default_docs: list[Doc], production_docs: list[Doc], variant_docs: list[Doc]
) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is missing: ./dev test installs it (ensure_helm)")
    docs = {"default": default_docs, "production": production_docs, "variant": variant_docs}[which]
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue  # not in the Kubernetes API: test_the_prometheus_operator_objects_have_their_shape
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {error.message} at {list(error.path)}")


def test_the_production_example_renders_the_whole_installation(production_docs: list[Doc]) -> None:
    assert kinds(production_docs) == {
        ("ServiceAccount", "nmbrs-sync"),
        ("ConfigMap", "nmbrs-sync-config"),
        ("Deployment", "nmbrs-sync-worker"),
        ("Service", "nmbrs-sync-worker"),
        ("PodDisruptionBudget", "nmbrs-sync-worker"),
        ("Deployment", "nmbrs-sync-web"),
        ("Service", "nmbrs-sync-web"),
        ("PodDisruptionBudget", "nmbrs-sync-web"),
        ("Ingress", "nmbrs-sync-web"),
        ("ServiceMonitor", "nmbrs-sync-worker"),
        ("ServiceMonitor", "nmbrs-sync-web"),
        ("PrometheusRule", "nmbrs-sync"),
        ("NetworkPolicy", "nmbrs-sync-worker"),
        ("NetworkPolicy", "nmbrs-sync-web"),
    }  # no Secret: they all come from existing ones
    assert one(production_docs, "Deployment", "-worker")["spec"]["replicas"] == 3
    for doc in production_docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "nmbrs-sync"
        assert labels["app.kubernetes.io/instance"] == "nmbrs-sync"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_the_prometheus_operator_objects_have_their_shape(production_docs: list[Doc]) -> None:
    for component, port, job in (("worker", "status", "nmbrs-sync-worker"), ("web", "http", "nmbrs-sync-web")):
        monitor = one(production_docs, "ServiceMonitor", f"-{component}")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}
        service = one(production_docs, "Service", f"-{component}")
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["payroll"]}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]} and endpoint["port"] == port
        assert endpoint["path"] == "/metrics"
        # The alert rules match job="nmbrs-sync-worker": the Service's name would carry the release name.
        assert endpoint["relabelings"] == [{"action": "replace", "targetLabel": "job", "replacement": job}]
    rule = one(production_docs, "PrometheusRule", "nmbrs-sync")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == yaml.safe_load(CHART_ALERTS.read_text())["groups"]  # the default job names
    for group in rule["spec"]["groups"]:
        assert group["name"] and all({"alert", "expr"} <= set(r) for r in group["rules"])


def test_the_charts_alert_rules_are_those_of_deploy_prometheus() -> None:
    copy = CHART_ALERTS
    assert copy.read_text() == ALERTS.read_text(), f"copy {ALERTS.relative_to(REPO)} to {copy.relative_to(REPO)}"


def test_the_alert_rules_match_the_configured_job_names() -> None:
    """The ServiceMonitors relabel job to serviceMonitor.workerJob/webJob: the rules' matchers must follow."""
    jobs = {"worker": "acme-payroll-worker", "web": "acme-payroll-web"}
    docs = render(
        sets=(
            "prometheusRule.enabled=true",
            "serviceMonitor.enabled=true",
            f"serviceMonitor.workerJob={jobs['worker']}",
            f"serviceMonitor.webJob={jobs['web']}",
        )
    )
    groups = one(docs, "PrometheusRule", "nmbrs-sync")["spec"]["groups"]

    def renamed(text: str) -> str:
        for component, default in DEFAULT_JOBS.items():
            text = text.replace(f'job="{default}"', f'job="{jobs[component]}"')
        return text

    expected = yaml.safe_load(CHART_ALERTS.read_text())["groups"]
    for group in expected:
        for rule in group["rules"]:
            rule["expr"] = renamed(str(rule["expr"]))
            for field in ("labels", "annotations"):
                if field in rule:
                    rule[field] = {name: renamed(str(text)) for name, text in rule[field].items()}
    assert groups == expected
    rules = [rule for group in groups for rule in group["rules"]]
    matchers = [m for rule in rules for m in re.findall(r'job\s*=~?\s*"([^"]*)"', str(rule["expr"]))]
    assert matchers, "no rule matches a job"
    assert set(matchers) <= set(jobs.values()), sorted(set(matchers))
    leftovers = [
        text
        for rule in rules
        for text in (str(rule["expr"]), *map(str, rule.get("annotations", {}).values()))
        if any(f'job="{default}"' in text for default in DEFAULT_JOBS.values())
    ]
    assert not leftovers
    monitors = {
        one(docs, "ServiceMonitor", f"-{c}")["spec"]["endpoints"][0]["relabelings"][0]["replacement"] for c in jobs
    }
    assert monitors == set(jobs.values())


def test_the_worker_is_probed_on_its_status_port(production_docs: list[Doc]) -> None:
    worker = container(one(production_docs, "Deployment", "-worker"))
    assert worker["args"] == ["worker"]
    assert worker["ports"] == [{"name": "status", "containerPort": 6066, "protocol": "TCP"}]
    env = pod_environment(production_docs, one(production_docs, "Deployment", "-worker"))
    assert env["STATUS_BIND"] == "0.0.0.0" and env["STATUS_PORT"] == "6066"
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "status"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "status"}
    # The status page answers only after the migrations: the startup probe waits minutes, not seconds.
    startup = worker["startupProbe"]
    assert startup["httpGet"] == {"path": "/healthz", "port": "status"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    # Not ready (database away) is when its metrics matter most.
    assert one(production_docs, "Service", "-worker")["spec"]["publishNotReadyAddresses"] is True


def test_the_web_app_is_probed_and_served_on_its_port(production_docs: list[Doc]) -> None:
    deployment = one(production_docs, "Deployment", "-web")
    web = container(deployment)
    assert web["args"] == ["web"]
    assert web["ports"] == [{"name": "http", "containerPort": 8090, "protocol": "TCP"}]
    env = pod_environment(production_docs, deployment)
    assert env["HR_WEB_BIND"] == "0.0.0.0" and env["HR_WEB_PORT"] == "8090"
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = one(production_docs, "Service", "-web")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8090, "targetPort": "http", "protocol": "TCP"}]
    ingress = one(production_docs, "Ingress", "-web")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "nmbrs-sync.acme.nl"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"name": "http"},
    }


@pytest.mark.parametrize("which", ["default", "production", "variant"])
def test_every_pod_runs_as_non_root_on_a_read_only_root(
    which: str, default_docs: list[Doc], production_docs: list[Doc], variant_docs: list[Doc]
) -> None:
    docs = {"default": default_docs, "production": production_docs, "variant": variant_docs}[which]
    workloads = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    assert workloads
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        (only,) = pod["containers"]
        context = only["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        # Writable only: HOME and TMPDIR (faust's data directory), each an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in only["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for path in ("/var/lib/nmbrs-sync", "/var/lib/nmbrs-sync/tmp"):
            assert "emptyDir" in volumes[mounts[path]], path


@pytest.mark.parametrize("which", ["default", "production", "variant"])
def test_every_environment_variable_is_a_setting(
    which: str, default_docs: list[Doc], production_docs: list[Doc], variant_docs: list[Doc]
) -> None:
    docs = {"default": default_docs, "production": production_docs, "variant": variant_docs}[which]
    known = settings_env_names()
    for workload in (d for d in docs if d["kind"] in ("Deployment", "Job")):
        names = {var["name"] for var in container(workload).get("env", [])}
        for source in container(workload).get("envFrom", []):
            names |= set(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        assert names, workload["metadata"]["name"]
        assert names <= known, f"{workload['metadata']['name']}: not settings: {sorted(names - known)}"


@pytest.mark.parametrize("which", ["production", "variant"])
def test_every_secret_file_is_mounted(which: str, production_docs: list[Doc], variant_docs: list[Doc]) -> None:
    """Each X_FILE (and Kafka TLS file) names a file that the pod's secret volume provides."""
    docs = {"production": production_docs, "variant": variant_docs}[which]
    for workload in (d for d in docs if d["kind"] in ("Deployment", "Job")):
        pod = workload["spec"]["template"]["spec"]
        (only,) = pod["containers"]
        mounted: set[str] = set()
        for mount in only["volumeMounts"]:
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            sources = volume.get("projected", {}).get("sources", []) + ([volume] if "secret" in volume else [])
            for source in sources:
                mounted |= {f"{mount['mountPath']}/{item['path']}" for item in source["secret"]["items"]}
        files = {var["value"] for var in only["env"] if var["value"].startswith(SECRETS_DIR)}
        assert files, workload["metadata"]["name"]
        assert files == mounted, workload["metadata"]["name"]


def load_pod_settings(docs: list[Doc], deployment: Doc, directory: Path) -> dict[str, Any]:
    """The container's environment as rendered, its secret files replaced by files in directory, loaded as the
    application's Settings: their masked dump, with the secrets' values under "secrets"."""
    env = pod_environment(docs, deployment)
    secrets = {
        "database-password": "p@ss word/1",
        "nmbrs-token": "token-of-the-api-user",
        "nmbrs-bsn-hash-key": "a-bsn-hash-key-of-32-characters!",
        "kafka-sasl-password": "sasl-secret",
        "kafka-ca.crt": "-----BEGIN CERTIFICATE-----\n",
    }
    for name, value in secrets.items():
        (directory / name).write_text(value + "\n")
    env = {name: value.replace(SECRETS_DIR, str(directory)) for name, value in env.items()}
    script = (
        "import json; from pydantic import SecretStr; from worker.config import load_settings; s = load_settings();"
        "secrets = {n: v.get_secret_value() for n, v in s if isinstance(v, SecretStr)};"
        "print(json.dumps({**s.masked(), 'secrets': secrets}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
        cwd=directory,  # no .env file
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_a_rendered_production_pod_loads_as_the_applications_settings(
    production_docs: list[Doc], tmp_path: Path
) -> None:
    """The worker's environment as rendered, its secret files replaced by files here: Settings accepts it."""
    shown = load_pod_settings(production_docs, one(production_docs, "Deployment", "-worker"), tmp_path)
    assert shown["secrets"] == {
        "database_url": "postgresql://nmbrs_sync:p%40ss%20word%2F1@payroll-db.postgres.database.azure.com:5432"
        "/nmbrs_sync?sslmode=require",
        "database_password": "p@ss word/1",
        "nmbrs_token": "token-of-the-api-user",
        "nmbrs_bsn_hash_key": "a-bsn-hash-key-of-32-characters!",
        "kafka_sasl_password": "sasl-secret",
    }
    assert shown["kafka_security_protocol"] == "SASL_SSL"
    assert shown["kafka_ssl_cafile"] == str(tmp_path / "kafka-ca.crt")
    assert shown["kafka_topic_partitions"] == 6 and shown["kafka_min_insync_replicas"] == 2
    assert shown["topics_ensure"] is False
    assert shown["topics"]["dead_letter"] == "payroll.nmbrs-sync.dead-letter"
    assert shown["hr_web_trusted_proxies"] == ["10.244.0.0/16"]
    assert shown["status_bind"] == "0.0.0.0" and shown["log_format"] == "json"


def secret_items(deployment: Doc) -> dict[str, list[str]]:
    """The pod's projected secret items: Secret name -> its keys."""
    items: dict[str, list[str]] = {}
    for volume in deployment["spec"]["template"]["spec"]["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            items[source["secret"]["name"]] = [item["key"] for item in source["secret"]["items"]]
    return items


def test_each_component_gets_only_the_secrets_it_uses(production_docs: list[Doc], tmp_path: Path) -> None:
    """The web app never calls Nmbrs: no token. It still loads as Settings against the real Nmbrs, whose
    validation wants a real BSN hash key, so it gets that key (and the worker's NMBRS_BASE_URL)."""
    envs = {c: pod_environment(production_docs, one(production_docs, "Deployment", f"-{c}")) for c in ("worker", "web")}
    files = {c: {name for name in env if name.endswith("_FILE")} for c, env in envs.items()}
    assert files["worker"] == {
        "DATABASE_PASSWORD_FILE",
        "NMBRS_TOKEN_FILE",
        "NMBRS_BSN_HASH_KEY_FILE",
        "KAFKA_SASL_PASSWORD_FILE",
    }
    assert files["web"] == {"DATABASE_PASSWORD_FILE", "NMBRS_BSN_HASH_KEY_FILE", "KAFKA_SASL_PASSWORD_FILE"}
    assert "NMBRS_TOKEN_FILE" not in envs["web"] and "NMBRS_TOKEN_FILE" in envs["worker"]
    assert envs["web"]["NMBRS_BASE_URL"] == envs["worker"]["NMBRS_BASE_URL"] == "https://api.nmbrs.nl/soap/v3/"
    web = one(production_docs, "Deployment", "-web")
    assert "nmbrs-token" not in secret_items(web)["nmbrs-sync"]
    assert "nmbrs-token" in secret_items(one(production_docs, "Deployment", "-worker"))["nmbrs-sync"]
    shown = load_pod_settings(production_docs, web, tmp_path)
    assert shown["secrets"]["nmbrs_bsn_hash_key"] == "a-bsn-hash-key-of-32-characters!"
    assert shown["secrets"]["nmbrs_token"] == "sandbox-token"  # the default: the web app never uses it
    assert shown["hr_web_auth"] == "proxy"


@pytest.mark.parametrize(
    ("sets", "worker_keys", "absent"),
    [
        # PLAINTEXT: no SASL password, and no Kafka CA although a TLS Secret is named.
        (("kafka.tls.existingSecret=kafka-ca",), ["database-password", "nmbrs-bsn-hash-key", "nmbrs-token"], []),
        # The DSN in the Secret carries its password.
        (
            ("secrets.keys.databaseUrl=database-url",),
            ["database-url", "nmbrs-bsn-hash-key", "nmbrs-token"],
            ["DATABASE_URL"],
        ),
        # A key named "" is not in the Secret.
        (("secrets.keys.databasePassword=",), ["nmbrs-bsn-hash-key", "nmbrs-token"], []),
        (
            (
                "kafka.securityProtocol=SASL_PLAINTEXT",
                "kafka.sasl.mechanism=PLAIN",
                "kafka.sasl.username=u",
                "kafka.tls.existingSecret=kafka-ca",
            ),
            ["database-password", "kafka-sasl-password", "nmbrs-bsn-hash-key", "nmbrs-token"],
            [],
        ),
    ],
)
def test_an_existing_secret_is_asked_only_for_the_keys_that_apply(
    sets: tuple[str, ...], worker_keys: list[str], absent: list[str]
) -> None:
    """A projected item is required: a key mounted without need, missing from the Secret, keeps the pod in
    ContainerCreating."""
    docs = render(sets=("secrets.existingSecret=nmbrs-sync", *sets))
    config = one(docs, "ConfigMap", "-config")["data"]
    for name in absent:
        assert name not in config
    for component in ("worker", "web"):
        deployment = one(docs, "Deployment", f"-{component}")
        expected = [k for k in worker_keys if component == "worker" or k != "nmbrs-token"]
        assert secret_items(deployment) == {"nmbrs-sync": expected}, component
        files = sorted(v["value"] for v in container(deployment)["env"] if v["value"].startswith(SECRETS_DIR))
        assert files == [f"{SECRETS_DIR}/{key}" for key in expected], component


def test_a_chart_made_secret_leaves_out_what_no_pod_mounts() -> None:
    docs = render(sets=("secrets.nmbrsToken=tok", "secrets.kafkaSaslPassword=unused-with-plaintext"))
    assert set(one(docs, "Secret", "-secrets")["data"]) == {"nmbrs-token"}
    assert secret_items(one(docs, "Deployment", "-worker")) == {"nmbrs-sync-secrets": ["nmbrs-token"]}
    assert secret_items(one(docs, "Deployment", "-web")) == {}


def test_the_default_topic_names_are_the_applications(default_docs: list[Doc]) -> None:
    data = one(default_docs, "ConfigMap", "-config")["data"]
    rendered = {name.removeprefix("TOPICS__").lower(): value for name, value in data.items() if "TOPICS__" in name}
    assert rendered == Topics().model_dump()


def test_a_topic_name_can_be_overridden_alone() -> None:
    data = one(render(sets=("kafka.topics.overrides.outcomes=acme.outcomes",)), "ConfigMap", "-config")["data"]
    assert data["TOPICS__OUTCOMES"] == "acme.outcomes"
    assert data["TOPICS__DECISIONS"] == "nmbrs-sync.decisions"


def test_more_workers_than_partitions_do_not_render() -> None:
    result = helm("template", "x", str(CHART), "--set", "worker.replicas=5", "--set", "kafka.topicPartitions=4")
    assert result.returncode != 0
    assert "worker.replicas (5) > kafka.topicPartitions (4)" in result.stderr
    assert "idle" in result.stderr
    render(sets=("worker.replicas=4", "kafka.topicPartitions=4"))  # as many as partitions is fine


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("kafka.securityProtocol=SASL_SSL",), "needs kafka.sasl.mechanism"),
        (("kafka.minInsyncReplicas=2",), "kafka.minInsyncReplicas (2) > kafka.replicationFactor (1)"),
        (("migrations.job.enabled=true",), "migrations.job.enabled needs secrets.existingSecret"),
        (("kafka.topicPartiton=4",), "additional properties 'topicPartiton' not allowed"),  # values.schema.json
        (("secrets.nmbrsBsnHashKey=short",), "nmbrsBsnHashKey"),
    ],
)
def test_a_configuration_that_cannot_work_does_not_render(sets: tuple[str, ...], message: str) -> None:
    result = helm("template", "x", str(CHART), *[arg for s in sets for arg in ("--set", s)])
    assert result.returncode != 0
    assert message in result.stderr


def test_the_migration_job_runs_before_the_release_as_the_owner(variant_docs: list[Doc]) -> None:
    job = one(variant_docs, "Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    migrate = container(job)
    assert migrate["args"] == ["migrate"]
    assert "envFrom" not in migrate  # the release's ConfigMap does not exist yet at pre-install
    env = {var["name"]: var["value"] for var in migrate["env"]}
    assert env["DATABASE_URL"] == "postgresql://nmbrs_sync_owner@db:5432/nmbrs_sync"
    assert env["DATABASE_PASSWORD_FILE"] == f"{SECRETS_DIR}/owner-password"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "default"
    assert not [d for d in render() if d["kind"] == "Job"]  # off by default


def test_the_migration_job_takes_the_dsn_from_the_secret_when_it_is_there() -> None:
    """No DSN of the owner's given: the application's, which (in the Secret) carries its password."""
    docs = render(
        sets=(
            "secrets.existingSecret=nmbrs-sync",
            "secrets.keys.databaseUrl=database-url",
            "migrations.job.enabled=true",
        )
    )
    job = one(docs, "Job", "-migrate")
    env = {var["name"]: var["value"] for var in container(job)["env"]}
    assert env["DATABASE_URL_FILE"] == f"{SECRETS_DIR}/database-url"
    assert "DATABASE_URL" not in env and "DATABASE_PASSWORD_FILE" not in env
    (secrets,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"]
    assert secrets["secret"]["items"] == [{"key": "database-url", "path": "database-url"}]


def test_a_chart_made_secret_holds_only_the_secrets_given() -> None:
    docs = render(sets=("secrets.nmbrsToken=tok", "secrets.nmbrsBsnHashKey=0123456789abcdef0123"))
    secret = one(docs, "Secret", "-secrets")
    assert set(secret["data"]) == {"nmbrs-token", "nmbrs-bsn-hash-key"}
    env = {var["name"]: var["value"] for var in container(one(docs, "Deployment", "-worker"))["env"]}
    assert env["NMBRS_TOKEN_FILE"] == f"{SECRETS_DIR}/nmbrs-token"
    assert "DATABASE_PASSWORD_FILE" not in env


def test_a_changed_setting_rolls_the_pods(default_docs: list[Doc]) -> None:
    def checksum(docs: list[Doc]) -> str:
        annotations = one(docs, "Deployment", "-worker")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    assert checksum(render(sets=("logLevel=DEBUG",))) != checksum(default_docs)


def test_the_chart_runs_the_image_as_it_was_built(production_docs: list[Doc]) -> None:
    """The Containerfile's user, ports and writable directories are the ones the chart's pods rely on."""
    lines = (REPO / "deploy" / "container" / "Containerfile").read_text().splitlines()
    instructions = [line.split(None, 1) for line in lines if line and not line[0].isspace() and line[0] != "#"]
    last = {keyword: rest for keyword, rest in instructions}
    assert last["USER"] == "10001:10001"
    assert last["ENTRYPOINT"] == '["nmbrs-sync"]' and last["CMD"] == '["worker"]'
    assert set(last["EXPOSE"].split()) == {"6066", "8090"}
    assert "TMPDIR=/var/lib/nmbrs-sync/tmp" in "\n".join(lines) and last["VOLUME"] == "/var/lib/nmbrs-sync"
    for suffix, port in (("-worker", 6066), ("-web", 8090)):
        (container_port,) = container(one(production_docs, "Deployment", suffix))["ports"]
        assert container_port["containerPort"] == port


def test_the_network_policy_admits_only_the_ingress_controller_and_prometheus(
    production_docs: list[Doc], default_docs: list[Doc]
) -> None:
    """Proxy auth believes a header: only the ingress controller may reach the web pods (Prometheus for /metrics),
    only Prometheus the workers' status port (the kubelet's probes pass a NetworkPolicy anyway)."""
    ingress_controller = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
        },
    }
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    for component, port, peers in (
        ("web", "http", [ingress_controller, prometheus]),
        ("worker", "status", [prometheus]),
    ):
        policy = one(production_docs, "NetworkPolicy", f"-{component}")
        deployment = one(production_docs, "Deployment", f"-{component}")
        assert policy["spec"]["podSelector"] == deployment["spec"]["selector"]
        assert policy["spec"]["policyTypes"] == ["Ingress"]  # egress open: Kafka, PostgreSQL, api.nmbrs.nl
        assert policy["spec"]["ingress"] == [{"from": peers, "ports": [{"port": port, "protocol": "TCP"}]}]
        assert port in {p["name"] for p in container(deployment)["ports"]}
    assert not [d for d in default_docs if d["kind"] == "NetworkPolicy"]  # off by default
    without_web = render(sets=("networkPolicy.enabled=true", "web.enabled=false"))
    assert {d["metadata"]["name"] for d in without_web if d["kind"] == "NetworkPolicy"} == {"nmbrs-sync-worker"}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("web.auth=proxy",), "web.auth=proxy needs networkPolicy.enabled"),
        (("networkPolicy.enabled=true", "networkPolicy.prometheus=null"), "networkPolicy.prometheus needs"),
        (
            (
                "networkPolicy.enabled=true",
                "networkPolicy.ingressController.namespaceSelector=null",
                "networkPolicy.ingressController.podSelector=null",
            ),
            "networkPolicy.ingressController needs",
        ),
    ],
)
def test_proxy_auth_does_not_render_open_to_every_pod(sets: tuple[str, ...], message: str) -> None:
    result = helm("template", "x", str(CHART), *[arg for s in sets for arg in ("--set", s)])
    assert result.returncode != 0
    assert message in result.stderr


def test_proxy_auth_renders_with_a_network_policy_or_acknowledged() -> None:
    with_policy = render(sets=("web.auth=proxy", "networkPolicy.enabled=true"))
    assert {d["metadata"]["name"] for d in with_policy if d["kind"] == "NetworkPolicy"} == {
        "nmbrs-sync-web",
        "nmbrs-sync-worker",
    }
    acknowledged = render(sets=("web.auth=proxy", "web.acknowledgeProxyWithoutNetworkPolicy=true"))
    assert not [d for d in acknowledged if d["kind"] == "NetworkPolicy"]
    render(sets=("web.auth=proxy", "web.enabled=false"))  # no web app, nothing to protect


def test_the_workers_status_port_stays_inside_the_cluster(
    default_docs: list[Doc], production_docs: list[Doc], variant_docs: list[Doc]
) -> None:
    """faust serves its own pages (tables, topics) next to /metrics: a ClusterIP Service, no Ingress to it, even
    with the web app's Service made public."""
    exposed_web = render(sets=("web.service.type=LoadBalancer", "ingress.enabled=true"))
    for docs in (default_docs, production_docs, variant_docs, exposed_web):
        worker = one(docs, "Service", "-worker")
        assert worker["spec"]["type"] == "ClusterIP"
        assert "nodePort" not in worker["spec"]["ports"][0]
        for ingress in (d for d in docs if d["kind"] == "Ingress"):
            backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
            assert backends == {one(docs, "Service", "-web")["metadata"]["name"]}
    assert one(exposed_web, "Service", "-web")["spec"]["type"] == "LoadBalancer"


@pytest.mark.parametrize("component", ["worker", "web"])
def test_a_drain_never_waits_for_unready_pods(production_docs: list[Doc], component: str) -> None:
    """During a database outage every pod is unready: an eviction must not wait for readiness."""
    budget = one(production_docs, "PodDisruptionBudget", f"-{component}")
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert budget["spec"]["maxUnavailable"] == 1


def test_the_worker_has_room_for_a_poll_of_50000_employees(default_docs: list[Doc]) -> None:
    """bench/RESULTS.md: a poll of 50,000 employees peaks at 946 MB resident."""
    resources = container(one(default_docs, "Deployment", "-worker"))["resources"]
    assert resources == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
