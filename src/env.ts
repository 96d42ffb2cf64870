/** True when the environment variable `name` is set to anything but '' or '0' (IPSECOV2_* switches). */
export function envFlag(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0';
}
