// Container mount paths compared as the container runtime resolves them: `//kustodia/kustodia-shim`,
// `/kustodia/./x`, `/kustodia/` and `/opt/../kustodia` are all at or under `/kustodia`.

/** The absolute path `path` names: repeated slashes, `.` and a trailing slash dropped, `..` resolved (never above `/`). */
export function normaliseMountPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join("/")}`;
}

/** Whether a mount at `path` lands on `directory` or inside it. */
export function isAtOrUnder(path: string, directory: string): boolean {
  const [normal, parent] = [normaliseMountPath(path), normaliseMountPath(directory)];
  return normal === parent || normal.startsWith(parent === "/" ? "/" : `${parent}/`);
}
