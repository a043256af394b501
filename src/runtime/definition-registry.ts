/**
 * The workflow definitions a runtime runs, by name and version: which one a new instance starts on, and which one an
 * instance in flight runs on — or why none can (its version is not registered, or that version's structure changed).
 */
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import { UnknownWorkflowError } from '../errors/runtime-errors';
import type { WorkflowServices } from '../engine/instance-actor';
import { versionOf, type BlockedReason, type InstanceRecord } from '../engine/instance-record';
import type { RunnableDefinition } from '../store/instance-store';
import type { WorkflowDefinition } from '../workflow/workflow-definition';

/** Why a record cannot run here, without the status and time a block adds. */
export type Unrunnable = Pick<BlockedReason, 'code' | 'message' | 'fingerprint' | 'registered'>;

/** A registered definition: what the runtime made for it, and the definition as the user gave it. */
interface Entry {
  readonly services: WorkflowServices;
  readonly source: WorkflowDefinition;
}

export class DefinitionRegistry {
  private readonly byName = new Map<string, Map<number, Entry>>();

  /**
   * Adds a definition, made into services by `make` the first time. Adding the same definition again changes
   * nothing; another definition under a taken name and version is refused.
   * @returns true when it was new.
   * @throws DefinitionError `DUPLICATE_NAME`
   */
  add(def: WorkflowDefinition, make: (def: WorkflowDefinition) => WorkflowServices): boolean {
    let versions = this.byName.get(def.name);
    const existing = versions?.get(def.version);
    if (existing !== undefined) {
      if (existing.source === def) return false;
      throw new DefinitionError(
        'DUPLICATE_NAME',
        `another definition of workflow ${quote(def.name)} version ${def.version} is already registered with this runtime; give a changed definition its own version`,
        { workflow: def.name, version: def.version },
      );
    }
    if (versions === undefined) this.byName.set(def.name, (versions = new Map<number, Entry>()));
    versions.set(def.version, { services: make(def), source: def });
    return true;
  }

  /**
   * The services of `name` at `version`, or its newest version when none is given.
   * @throws UnknownWorkflowError
   */
  get(name: string, version: number | undefined, where: string): WorkflowServices {
    const versions = this.byName.get(name);
    if (versions === undefined || versions.size === 0) throw new UnknownWorkflowError(name, where);
    const wanted = version ?? Math.max(...versions.keys());
    const entry = versions.get(wanted);
    if (entry === undefined) throw new UnknownWorkflowError(`${name}@${wanted}`, `${where}; registered versions: ${[...versions.keys()].sort((a, b) => a - b).join(', ')}`);
    return entry.services;
  }

  /** The services for a record's workflow and version when their definition is the one it started on. */
  forRecord(record: InstanceRecord): { readonly services: WorkflowServices } | { readonly unrunnable: Unrunnable } {
    const version = versionOf(record);
    const fingerprint = record.fingerprint ?? null;
    const entry = this.byName.get(record.workflow)?.get(version);
    if (entry === undefined) {
      const known = [...(this.byName.get(record.workflow)?.keys() ?? [])].sort((a, b) => a - b);
      return {
        unrunnable: {
          code: 'UNKNOWN_VERSION',
          message: `instance ${quote(record.id, 120)} runs on version ${version} of workflow ${quote(record.workflow)}, which this runtime does not have (${
            known.length === 0 ? 'no version of it is registered' : `it has version ${known.join(', ')}`
          }); register that version again, or migrate the instance`,
          fingerprint,
          registered: null,
        },
      };
    }
    const registered = entry.services.def.fingerprint;
    if (fingerprint !== null && fingerprint !== registered) {
      return {
        unrunnable: {
          code: 'DEFINITION_CHANGED',
          message: `instance ${quote(record.id, 120)} started on version ${version} of workflow ${quote(record.workflow)} with structure ${fingerprint}, but the definition registered as that version has structure ${registered}; register the changed definition as a new version and the old one as ${version}, or migrate the instance`,
          fingerprint,
          registered,
        },
      };
    }
    return { services: entry.services };
  }

  /** Every registered definition, as the store's runnable filters take them. */
  runnable(): RunnableDefinition[] {
    const out: RunnableDefinition[] = [];
    for (const versions of this.byName.values()) {
      for (const { services } of versions.values()) out.push({ workflow: services.def.name, version: services.def.version, fingerprint: services.def.fingerprint });
    }
    return out;
  }

  /** The services of every registered definition. */
  all(): WorkflowServices[] {
    return [...this.byName.values()].flatMap((versions) => [...versions.values()].map((e) => e.services));
  }
}
