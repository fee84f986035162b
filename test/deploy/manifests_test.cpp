// deploy/: every kustomization renders with the local kubectl, the configuration in the
// ConfigMap passes `edgehub --check`, and names, ports, paths and CRDs line up with the code.
#include <edgehub/devapi/resources.hpp>
#include <edgehub/devapi/server.hpp>
#include <gtest/gtest.h>

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "manifests.hpp"
#include "process.hpp"

namespace edgehub::test::deploy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string temp_file(const std::string& name, const std::string& text) {
  // Removed when the test program ends.
  static const struct TempDir {
    std::string path = make_temp_dir("edgehub-deploy-test");
    ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
  } dir;
  const auto path = dir.path + name;
  std::ofstream(path) << text;
  return path;
}

// The configuration file embedded in the rendered ConfigMap.
std::string embedded_config(const std::vector<YAML::Node>& objects) {
  return find_object(objects, "ConfigMap")["data"]["edgehub.production.yaml"].as<std::string>();
}

YAML::Node hub_container(const YAML::Node& deployment) {
  return deployment["spec"]["template"]["spec"]["containers"][0];
}

std::uint16_t port_of(const std::string& host_port) {
  return static_cast<std::uint16_t>(std::stoi(host_port.substr(host_port.rfind(':') + 1)));
}

std::uint16_t container_port(const YAML::Node& container, const std::string& name) {
  for (const auto& p : container["ports"]) {
    if (p["name"].as<std::string>() == name) return p["containerPort"].as<std::uint16_t>();
  }
  ADD_FAILURE() << "no container port named " << name;
  return 0;
}

TEST(DeployManifests, EveryKustomizationRenders) {
  int rendered = 0;
  for (const auto& entry : fs::recursive_directory_iterator(source("deploy"))) {
    if (entry.path().filename() != "kustomization.yaml") continue;
    const auto dir = fs::relative(entry.path().parent_path(), source("")).string();
    SCOPED_TRACE(dir);
    std::vector<YAML::Node> objects;
    ASSERT_NO_THROW(objects = kustomize(dir));
    EXPECT_FALSE(objects.empty());
    for (const auto& o : objects) {
      EXPECT_TRUE(o["apiVersion"] && o["kind"] && o["metadata"]["name"]) << YAML::Dump(o);
    }
    ++rendered;
  }
  EXPECT_GE(rendered, 5);  // deploy, base, crds, crds/kubeedge, overlays/tls-at-ingress, ...
}

TEST(DeployManifests, EmbeddedConfigPassesCheck) {
  ::setenv("POD_NAME", "edgehub-0", 1);
  ::setenv("POD_NAMESPACE", "edgehub", 1);
  ::setenv("POD_IP", "10.0.0.1", 1);
  for (const std::string dir : {"deploy", "deploy/overlays/tls-at-ingress"}) {
    SCOPED_TRACE(dir);
    const auto path = temp_file("edgehub.production.yaml", embedded_config(kustomize(dir)));
    const auto r = run({binary("edgehub"), "--config", path, "--check"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // config/ keeps a copy for readers of the repository; it must be the deployed file.
  EXPECT_EQ(read_text(source("config/edgehub.production.yaml")),
            read_text(source("deploy/base/edgehub.production.yaml")));
}

TEST(DeployManifests, OverlayConfigDiffersOnlyInHubProxy) {
  auto base = to_json(YAML::Load(embedded_config(kustomize("deploy"))));
  auto overlay = to_json(YAML::Load(embedded_config(kustomize("deploy/overlays/tls-at-ingress"))));
  EXPECT_FALSE(base["hub"].contains("proxy") && base["hub"]["proxy"].value("enabled", false));
  EXPECT_TRUE(overlay["hub"]["proxy"]["enabled"]);
  // The ingress authenticates with a client certificate of its own CA (mounted by the
  // overlay's Deployment patch), not by its address.
  EXPECT_EQ(overlay["hub"]["proxy"]["clientCAFile"], "/etc/edgehub/ingress-ca/ca.crt");
  EXPECT_EQ(overlay["hub"]["proxy"]["clientNames"], json::array({"ingress-nginx"}));
  base["hub"].erase("proxy");
  overlay["hub"].erase("proxy");
  EXPECT_EQ(base, overlay) << "the overlay's configuration drifted from the base's";
}

// Issue #16 item 12: the overlay's ingress reaches the replicas over mutual TLS — its Ingress
// presents a client certificate and verifies the replica's, and every replica mounts the
// CA that hub.proxy.clientCAFile names.
TEST(DeployManifests, OverlayIngressAuthenticatesItselfToTheHub) {
  const auto objects = kustomize("deploy/overlays/tls-at-ingress");
  const auto ingress = find_object(objects, "Ingress", "edgehub");
  const auto annotation = [&](const std::string& key) {
    return ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/" + key].as<std::string>("");
  };
  EXPECT_EQ(annotation("backend-protocol"), "HTTPS");
  EXPECT_EQ(annotation("proxy-ssl-secret"), "edgehub/edgehub-ingress-client");
  EXPECT_EQ(annotation("proxy-ssl-verify"), "on");
  const auto config = to_json(YAML::Load(embedded_config(objects)));
  const auto names = config["hub"]["certService"]["serverNames"];
  EXPECT_NE(std::find(names.begin(), names.end(), annotation("proxy-ssl-name")), names.end())
      << "the replicas' certificates do not carry the name the ingress checks";

  const auto ca_file = config["hub"]["proxy"]["clientCAFile"].get<std::string>();
  const auto dir = ca_file.substr(0, ca_file.rfind('/'));
  const auto pod = find_object(objects, "Deployment", "edgehub")["spec"]["template"]["spec"];
  std::string volume;
  for (const auto& mount : pod["containers"][0]["volumeMounts"]) {
    if (mount["mountPath"].as<std::string>() == dir) volume = mount["name"].as<std::string>();
  }
  ASSERT_FALSE(volume.empty()) << dir << " is not mounted";
  for (const auto& v : pod["volumes"]) {
    if (v["name"].as<std::string>() != volume) continue;
    EXPECT_EQ(v["secret"]["secretName"].as<std::string>(""), "edgehub-ingress-ca");
    EXPECT_FALSE(v["secret"]["optional"].as<bool>(false)) << "a replica would start without it";
  }
}

// Issue #16 item 12: the edge port of the overlay trusts a forwarded identity, so no one but
// the ingress controller's pods may reach it: every NetworkPolicy rule that opens it names
// the controller by namespace AND pod labels in the same peer; none opens it to everyone.
TEST(DeployManifests, OverlayEdgePortIsOpenOnlyToTheIngressController) {
  const auto objects = kustomize("deploy/overlays/tls-at-ingress");
  const auto config = to_json(YAML::Load(embedded_config(objects)));
  const auto edge_port = config["hub"]["listen"].get<std::string>();
  ASSERT_TRUE(edge_port.ends_with(":10000")) << edge_port;
  int rules_opening = 0;
  for (const auto& policy : all_of_kind(objects, "NetworkPolicy")) {
    const auto& spec = policy["spec"];
    if (spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"].as<std::string>("") !=
        "hub") {
      continue;
    }
    for (const auto& rule : spec["ingress"]) {
      bool opens = !rule["ports"];
      for (const auto& p : rule["ports"]) opens = opens || p["port"].as<int>(0) == 10000;
      if (!opens) continue;
      ++rules_opening;
      ASSERT_TRUE(rule["from"] && rule["from"].size() > 0) << "port 10000 open to everyone";
      for (const auto& peer : rule["from"]) {
        EXPECT_FALSE(peer["ipBlock"]) << "an address block may forward identities";
        EXPECT_EQ(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                      .as<std::string>(""),
                  "ingress-nginx");
        EXPECT_EQ(peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                      .as<std::string>(""),
                  "controller")
            << "every pod of the namespace may forward identities";
      }
    }
  }
  EXPECT_GE(rules_opening, 1) << "no NetworkPolicy restricts the overlay's edge port";
}

TEST(DeployManifests, DeploymentLinesUpWithTheConfig) {
  const auto objects = kustomize("deploy");
  const auto config = to_json(YAML::Load(embedded_config(objects)));
  const auto& deployment = find_object(objects, "Deployment", "edgehub");
  const auto& pod = deployment["spec"]["template"]["spec"];
  const auto& c = hub_container(deployment);

  // The args name the config file where the ConfigMap is mounted.
  const auto args = c["args"].as<std::vector<std::string>>();
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0], "--config");
  // Every file the configuration names is a key of a mounted ConfigMap or Secret.
  auto mounted = [&](const std::string& file) {
    for (const auto& m : c["volumeMounts"]) {
      const auto dir = m["mountPath"].as<std::string>() + "/";
      if (file.rfind(dir, 0) != 0) continue;
      const auto key = file.substr(dir.size());
      for (const auto& v : pod["volumes"]) {
        if (v["name"].as<std::string>() != m["name"].as<std::string>()) continue;
        if (v["configMap"]) {
          return find_object(objects, "ConfigMap", v["configMap"]["name"].as<std::string>())["data"][key]
              .IsDefined();
        }
        for (const auto& item : v["secret"]["items"]) {
          if (item["path"].as<std::string>() == key) return true;
        }
      }
    }
    return false;
  };
  EXPECT_TRUE(mounted(args[1])) << args[1];
  for (const auto& file : {config["hub"]["tls"]["certFile"], config["hub"]["tls"]["keyFile"],
                           config["hub"]["tls"]["clientCAFile"],
                           config["hub"]["certService"]["caCertFile"],
                           config["hub"]["certService"]["caKeyFile"]}) {
    EXPECT_TRUE(mounted(file.get<std::string>())) << file;
  }

  // Ports: the container's are the configuration's, the Services point at them by name.
  EXPECT_EQ(container_port(c, "edge"), port_of(config["hub"]["listen"]));
  EXPECT_EQ(container_port(c, "certs"), port_of(config["hub"]["certService"]["listen"]));
  EXPECT_EQ(container_port(c, "metrics"), port_of(config["metrics"]["listen"]));
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"].as<std::string>(), "metrics");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["port"].as<std::string>(), "metrics");

  // hub.id, hub.namespace, hub.advertiseAddress come from the downward API.
  EXPECT_EQ(config["hub"]["id"], "${POD_NAME}");
  EXPECT_EQ(config["hub"]["namespace"], "${POD_NAMESPACE}");
  EXPECT_EQ(config["hub"]["advertiseAddress"], "${POD_IP}");
  std::map<std::string, std::string> env;
  for (const auto& e : c["env"]) env[e["name"].as<std::string>()] = e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>();
  EXPECT_EQ(env["POD_NAME"], "metadata.name");
  EXPECT_EQ(env["POD_NAMESPACE"], "metadata.namespace");
  EXPECT_EQ(env["POD_IP"], "status.podIP");

  // The grace period covers the drain deadline, with room to exit.
  const auto deadline = config["drain"]["deadline"].get<std::string>();
  ASSERT_EQ(deadline.back(), 's') << deadline;
  const int grace = pod["terminationGracePeriodSeconds"].as<int>();
  EXPECT_GT(grace, std::stoi(deadline));
  EXPECT_LE(grace, std::stoi(deadline) + 30);
  EXPECT_EQ(deployment["spec"]["replicas"].as<int>(), 3);
  EXPECT_TRUE(pod["affinity"]["podAntiAffinity"].IsDefined());
  EXPECT_TRUE(c["resources"]["requests"]["memory"].IsDefined());
}

TEST(DeployManifests, NamesNamespacesAndSelectorsAgree) {
  const auto objects = kustomize("deploy");
  const auto ns = find_object(objects, "Namespace")["metadata"]["name"].as<std::string>();
  const auto& deployment = find_object(objects, "Deployment", "edgehub");
  const auto pod_labels = deployment["spec"]["template"]["metadata"]["labels"];
  auto selects_pods = [&](const YAML::Node& selector) {
    if (!selector || selector.size() == 0) return false;
    for (const auto& kv : selector) {
      if (pod_labels[kv.first.as<std::string>()].as<std::string>("") != kv.second.as<std::string>()) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(selects_pods(deployment["spec"]["selector"]["matchLabels"]));
  EXPECT_TRUE(selects_pods(find_object(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]));
  std::set<std::string> service_ports;
  for (const auto& s : all_of_kind(objects, "Service")) {
    EXPECT_TRUE(selects_pods(s["spec"]["selector"])) << s["metadata"]["name"];
    for (const auto& p : s["spec"]["ports"]) {
      service_ports.insert(s["metadata"]["name"].as<std::string>() + ":" + p["name"].as<std::string>());
      container_port(hub_container(deployment), p["targetPort"].as<std::string>());
    }
  }
  for (const auto& rule : find_object(objects, "Ingress")["spec"]["rules"]) {
    for (const auto& path : rule["http"]["paths"]) {
      const auto& svc = path["backend"]["service"];
      EXPECT_TRUE(service_ports.count(svc["name"].as<std::string>() + ":" +
                                      svc["port"]["name"].as<std::string>()));
    }
  }
  const auto sa = deployment["spec"]["template"]["spec"]["serviceAccountName"].as<std::string>();
  EXPECT_EQ(find_object(objects, "ServiceAccount", sa)["metadata"]["namespace"].as<std::string>(), ns);
  for (const auto& o : objects) {
    const auto kind = o["kind"].as<std::string>();
    const auto object_ns = o["metadata"]["namespace"].as<std::string>("");
    if (kind == "Role" || kind == "RoleBinding") {
      EXPECT_TRUE(object_ns == ns || object_ns == "kube-node-lease") << kind << " in " << object_ns;
    } else if (kind != "Namespace" && kind != "ClusterRole" && kind != "ClusterRoleBinding" &&
               kind != "CustomResourceDefinition") {
      EXPECT_EQ(object_ns, ns) << kind << " " << o["metadata"]["name"];
    }
    for (const auto& s : o["subjects"]) {
      EXPECT_EQ(s["name"].as<std::string>(), sa);
      EXPECT_EQ(s["namespace"].as<std::string>(), ns);
    }
  }
  // Both Roles the hub needs are bound: its own namespace and the edges' Leases.
  const Rbac rbac(objects, ns, sa);
  EXPECT_TRUE(rbac.allows({"create", "coordination.k8s.io", "leases", "", "kube-node-lease", "", ""}));
  EXPECT_FALSE(rbac.allows({"create", "coordination.k8s.io", "leases", "", "default", "", ""}));
  EXPECT_TRUE(rbac.allows({"update", "coordination.k8s.io", "leases", "", ns, "edgehub-0", ""}));
  EXPECT_TRUE(rbac.allows({"create", "", "secrets", "", ns, "", ""}));
  EXPECT_FALSE(rbac.allows({"create", "", "secrets", "", "default", "", ""}));
  EXPECT_FALSE(rbac.allows({"delete", "", "nodes", "", "", "edge-0", ""}));
}

// Each CRD is what the embedded API server serves (and the hub's client asks for).
TEST(DeployManifests, CrdsMatchWhatTheCodeServes) {
  std::vector<YAML::Node> crds = kustomize("deploy/crds");
  for (const auto& o : kustomize("deploy/crds/kubeedge")) crds.push_back(o);
  ASSERT_EQ(crds.size(), 3u);
  for (const auto& crd : crds) {
    const auto& spec = crd["spec"];
    const auto group = spec["group"].as<std::string>();
    const auto plural = spec["names"]["plural"].as<std::string>();
    SCOPED_TRACE(plural);
    EXPECT_EQ(crd["metadata"]["name"].as<std::string>(), plural + "." + group);
    ASSERT_EQ(spec["versions"].size(), 1u);
    const auto& version = spec["versions"][0];
    const auto* served = devapi::find_resource(group, version["name"].as<std::string>(), plural);
    ASSERT_NE(served, nullptr);
    EXPECT_EQ(served->kind, spec["names"]["kind"].as<std::string>());
    EXPECT_EQ(served->namespaced, spec["scope"].as<std::string>() == "Namespaced");
    EXPECT_EQ(served->has_status, version["subresources"] && version["subresources"]["status"]);
    EXPECT_EQ(version["schema"]["openAPIV3Schema"]["type"].as<std::string>(), "object");
  }
  const auto& nodesync = find_object(crds, "CustomResourceDefinition", "nodesyncs.edgehub.io");
  std::vector<std::string> columns;
  for (const auto& col : nodesync["spec"]["versions"][0]["additionalPrinterColumns"]) {
    columns.push_back(col["name"].as<std::string>() + "=" + col["jsonPath"].as<std::string>());
  }
  EXPECT_EQ(columns, (std::vector<std::string>{"Owner=.status.owner",
                                               "Age=.metadata.creationTimestamp"}));
}

TEST(DeployManifests, NodeSyncSampleMatchesTheSchema) {
  const auto crd = to_json(find_object(kustomize("deploy/crds"), "CustomResourceDefinition"));
  const auto& schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  const auto sample = to_json(YAML::LoadFile(source("test/deploy/nodesync-sample.yaml")));
  EXPECT_EQ(schema_errors(schema, sample), std::vector<std::string>{});
  // The checker does reject what the API server would not keep.
  auto broken = sample;
  broken["status"]["owner"] = 7;
  broken["status"]["ownerSince"] = "yesterday";
  broken["status"]["objects"][0]["ackedResourceVersion"] = 1042;
  broken["status"]["replica"] = "x";
  EXPECT_EQ(schema_errors(schema, broken).size(), 4u);
}

TEST(DeployManifests, PrometheusRulesPassPromtool) {
  const auto promtool = find_program("promtool");
  ASSERT_FALSE(promtool.empty()) << "promtool is not on PATH (scripts/install-deps.sh)";
  const auto& rule = find_object(kustomize("deploy/monitoring"), "PrometheusRule");
  YAML::Emitter out;
  out << rule["spec"];
  const auto path = temp_file("edgehub-rules.yaml", out.c_str());
  const auto r = run({promtool, "check", "rules", path});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// The objects the embedded API server serves, applied with kubectl as an operator would.
TEST(DeployManifests, ServedObjectsApplyWithKubectl) {
  const auto kubectl = find_program("kubectl");
  ASSERT_FALSE(kubectl.empty());
  devapi::Server api({});
  api.start();
  const auto kubeconfig = temp_file("kubeconfig", "");
  api.write_kubeconfig(kubeconfig);
  auto k = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {kubectl, "--kubeconfig", kubeconfig});
    return run(args);
  };

  const auto objects = kustomize("deploy");
  std::string served;
  for (const auto& o : objects) {
    const auto kind = o["kind"].as<std::string>();
    if (kind == "Namespace" || kind == "ServiceAccount" || kind == "ConfigMap") {
      served += "---\n" + std::string(YAML::Dump(o)) + "\n";
    }
  }
  auto r = k({"apply", "-f", temp_file("served.yaml", served)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto& cm = find_object(objects, "ConfigMap");
  const auto ns = cm["metadata"]["namespace"].as<std::string>();
  r = k({"get", "configmap", "-n", ns, cm["metadata"]["name"].as<std::string>(), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["data"]["edgehub.production.yaml"],
            cm["data"]["edgehub.production.yaml"].as<std::string>());

  // A NodeSync: the object, then its status through the status subresource as the hub
  // writes it; kubectl reads both back.
  const auto sample = to_json(YAML::LoadFile(source("test/deploy/nodesync-sample.yaml")));
  r = k({"apply", "-f", source("test/deploy/nodesync-sample.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json status_patch = {{"status", sample["status"]}};
  r = k({"patch", "nodesyncs.edgehub.io", "edge-0", "--subresource=status", "--type=merge", "-p",
         status_patch.dump()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = k({"get", "nodesyncs", "edge-0", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["status"], sample["status"]);

  // A replica's membership Lease, in the namespace the manifests create.
  r = k({"apply", "-f", source("test/deploy/membership-lease-sample.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = k({"get", "leases", "-n", ns, "-l", "edgehub.io/replica=true", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto leases = json::parse(r.out)["items"];
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0]["spec"]["holderIdentity"], leases[0]["metadata"]["name"]);
}

}  // namespace
}  // namespace edgehub::test::deploy
