/**
 * What the local runner checks before it starts anything: the environment
 * each service would get, through that service's own schema and rules (the
 * ones its start-up applies), so a wrong setting is one message and an exit,
 * not five services restarting forever. Each problem is told once, in terms
 * of the variable the user set.
 */
import { checkConfig, problemText } from '../services/platform/config';
import { SERVICE_CONFIGS } from './config-doc';

export interface ServiceLaunch {
  name: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The problems of the environments `launches` would start with, one line
 * each, naming the services that would refuse it. `setFrom` maps a variable
 * the runner sets from one the user set (FAULTS_TOKEN from ADMIN_TOKEN) to
 * that one: a problem with it is the user's variable's problem.
 */
export function meshConfigProblems(launches: readonly ServiceLaunch[], setFrom: Readonly<Record<string, string>> = {}): string[] {
  const found = new Map<string, { services: string[]; passedOnAs: Set<string> }>();
  for (const { name, env } of launches) {
    const service = SERVICE_CONFIGS.find((s) => s.name === name);
    if (!service) throw new Error(`no configuration schema for the service ${name}`);
    for (const problem of checkConfig(service.schema, env, service.rules).problems ?? []) {
      const told = problemText({ ...problem, variables: problem.variables.map((v) => ({ ...v, name: setFrom[v.name] ?? v.name })) });
      const entry = found.get(told) ?? { services: [], passedOnAs: new Set<string>() };
      if (!entry.services.includes(name)) entry.services.push(name);
      for (const { name: variable } of problem.variables) if (setFrom[variable]) entry.passedOnAs.add(variable);
      found.set(told, entry);
    }
  }
  return [...found].map(([told, { services, passedOnAs }]) => {
    const as = passedOnAs.size > 0 ? `; the runner passes it on as ${[...passedOnAs].join(', ')} too` : '';
    return `${told} (${services.join(', ')}${as})`;
  });
}
