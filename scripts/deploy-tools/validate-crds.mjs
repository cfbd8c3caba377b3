// Validates the custom resources of the rendered Kubernetes manifests against the OpenAPI schemas of their
// CRDs, as compiled into the @kubernetes-models packages (pinned in package-lock.json). Types, enums and
// required fields are checked; these CRD schemas do not forbid unknown fields, so a misspelt optional key
// would pass (scripts/validate_deploy.py checks the keys Flashpoint's manifests depend on by name).
//
//   node validate-crds.mjs NODE_MODULES_DIR RENDERED.yaml
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, file] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(join(modules, p)).href);
const { parseAllDocuments } = await load("yaml/dist/index.js");
const kinds = {
  "keda.sh/v1alpha1/ScaledObject": ["@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject.js", "ScaledObject"],
  "keda.sh/v1alpha1/TriggerAuthentication": ["@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication.js", "TriggerAuthentication"],
  "monitoring.coreos.com/v1/ServiceMonitor": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js", "ServiceMonitor"],
  "monitoring.coreos.com/v1/PodMonitor": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor.js", "PodMonitor"],
};
let failed = 0, checked = 0;
for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
  const obj = doc.toJS();
  if (!obj || !obj.apiVersion || obj.apiVersion.indexOf(".") < 0 || !obj.apiVersion.includes("/")) continue;
  const key = `${obj.apiVersion}/${obj.kind}`;
  const name = `${obj.kind}/${obj.metadata?.name}`;
  if (!kinds[key]) {
    console.error(`validate-crds: no schema for ${key} (${name}); add its @kubernetes-models package`);
    failed++;
    continue;
  }
  const mod = await load(kinds[key][0]);
  try {
    new mod[kinds[key][1]](obj).validate();
    console.log(`validate-crds: ${name} (${obj.apiVersion}) valid`);
    checked++;
  } catch (e) {
    console.error(`validate-crds: ${name}: ${e.message}`);
    failed++;
  }
}
console.log(`validate-crds: ${checked} valid, ${failed} failed`);
process.exit(failed ? 1 : 0);
