import { SERVICE_NAMES, type ServiceName } from '../contracts/services';
import type { Window } from './graph';
import type { FaultScenario } from './scenarios';
import type { SwitchView } from './view';

/** Each faults_active kind, as the PUT /admin/faults body turns it on when no scenario names a value. */
const KINDS: Record<string, { title: string; key: string; on: number | boolean }> = {
  delay: { title: 'delay', key: 'delayMs', on: 1000 },
  error: { title: 'errors', key: 'errorRate', on: 1 },
  publish_fail: { title: 'failed publishes', key: 'publishFailRate', on: 1 },
  pause: { title: 'paused listener', key: 'pause', on: true },
};

const describe = (key: string, value: number | boolean) =>
  key === 'delayMs' ? `${String(value)} ms` : typeof value === 'number' ? `${Math.round(value * 100)}%` : '';

/**
 * The switches of the services that run with their fault toggles on (their
 * /metrics has faults_active), each kind they have: on when faults_active
 * says so. A scenario of scenarios.yml that sets the same kind gives the
 * value and the answer key.
 */
export function switchesOf(window: Window, scenarios: readonly FaultScenario[]): SwitchView[] {
  const switches: SwitchView[] = [];
  for (const service of SERVICE_NAMES) {
    const last = window[service].last;
    if (!('samples' in last)) continue;
    for (const sample of last.samples.filter((s) => s.name === 'faults_active')) {
      const kind = sample.labels['kind'] ?? '';
      const known = KINDS[kind];
      if (!known) continue;
      const scenario = scenarios.find((s) => s.action.fault.service === service && known.key in s.action.fault.settings);
      const value = scenario?.action.fault.settings[known.key] ?? known.on;
      switches.push({
        id: `${service}.${kind}`,
        service,
        kind,
        title: `${service}: ${known.title} ${describe(known.key, value)}`.trimEnd(),
        on: sample.value > 0,
        settings: { [known.key]: value },
        ...(scenario ? { key: keyOf(scenario) } : {}),
      });
    }
  }
  return switches;
}

const keyOf = (scenario: FaultScenario) => ({
  scenario: scenario.title,
  play: scenario.play,
  answer: scenario.answer,
  alerts: scenario.alerts.map((a) => a.name),
});

export const switchService = (id: string): ServiceName | undefined => SERVICE_NAMES.find((name) => id.startsWith(`${name}.`));
