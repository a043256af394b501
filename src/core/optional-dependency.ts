import { MissingDependencyError } from '../errors/missing-dependency-error';

/** True when `error` says that `packageName` itself (not a file inside it, nor one of its own dependencies) is missing. */
function isNotInstalled(error: unknown, packageName: string): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return (
    typeof e === 'object' && e !== null &&
    (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND') &&
    typeof e.message === 'string' && e.message.includes(`'${packageName}'`)
  );
}

/**
 * Loads a package that sagaflow needs only for some features (a database driver, a bus client, an optional peer),
 * when that feature is used. A package that is not installed, or that throws while loading, becomes a
 * {@link MissingDependencyError} whose message says what needs it and how to install it.
 *
 * @param neededFor what needs the package, e.g. `the embedded SQLite store`
 */
export function requireDependency<T>(packageName: string, neededFor: string): T {
  try {
    // Resolved from sagaflow's own location, where npm and pnpm put its (optional) peer dependencies.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(packageName) as T;
  } catch (cause) {
    const command = `npm install ${packageName}`;
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new MissingDependencyError(
      packageName,
      command,
      isNotInstalled(cause, packageName)
        ? `${neededFor} needs the ${packageName} package, which is not installed: run \`${command}\``
        : `${neededFor} needs the ${packageName} package, which is installed but fails to load (${reason}): reinstall it with \`${command}\``,
      cause,
    );
  }
}
