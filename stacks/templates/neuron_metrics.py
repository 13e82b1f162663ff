# NeuronCore utilisation of one model host to CloudWatch, once a minute, for its fleet. Run by the
# boot script (model_host.sh.tmpl, step 5) as
#   neuron-monitor -c CONFIG | python3 neuron_metrics.py NAMESPACE MODEL_HOST
# In: neuron-monitor's JSON reports, one a line; NeuronCore utilisation (percent) is
# neuron_runtime_data[].report.neuroncore_counters.neuroncores_in_use.<core>.neuroncore_utilization
# (Neuron Monitor User Guide, "neuroncore_counters":
# https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-monitor-user-guide.html).
# Out: NeuronCoreUtilization (Percent) with the one dimension ModelHost, the mean over the cores in
# use and the reports of each minute (0 when no model runs), by `aws cloudwatch put-metric-data`;
# what is left when the input ends is published too.
# Kept small (standard library and the host's AWS CLI; comment lines are not embedded): EC2 user
# data is at most 16 KB, hence the dense lines). Tested by running it with a fake `aws`
# (tests/stacks/test_model_host_user_data.py).
# fmt: off
# ruff: noqa: S603, S607, E401, I001
import json, subprocess, sys, time

namespace, host = sys.argv[1:3]

def put(samples):
    value = str(round(sum(samples) / len(samples), 2))
    subprocess.run(["aws", "cloudwatch", "put-metric-data", "--namespace", namespace, "--metric-name",
        "NeuronCoreUtilization", "--unit", "Percent", "--dimensions", "ModelHost=" + host, "--value", value])

samples, start = [], time.monotonic()
for line in sys.stdin:
    try:
        apps = json.loads(line).get("neuron_runtime_data") or []
    except ValueError:
        continue
    counters = [(a.get("report") or {}).get("neuroncore_counters") or {} for a in apps]
    in_use = [c for n in counters for c in (n.get("neuroncores_in_use") or {}).values()]
    cores = [c.get("neuroncore_utilization", 0) for c in in_use]
    samples.append(sum(cores) / len(cores) if cores else 0)
    if time.monotonic() - start >= 60:
        put(samples)
        samples, start = [], time.monotonic()
if samples:
    put(samples)
