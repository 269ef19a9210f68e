/**
 * How many characters a chat template can render from a JSON value (limits.maxPromptChars): every
 * string counts its length, object keys too (`tools | tojson` prints them), and each other value
 * one character or its digits. Bounds the work a prompt costs before anything renders it, whatever
 * field carries the text (messages, tools, documents, template kwargs).
 *
 * Iterative, so a deeply nested body cannot overflow the stack, and it stops as soon as the count
 * passes `budget`: a 7 MB tool costs a walk up to the limit, not of the whole value.
 */
export function renderedChars(value: unknown, budget: number): number {
  let chars = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && chars <= budget) {
    const v = stack.pop();
    if (typeof v === "string") chars += v.length;
    else if (typeof v === "number") chars += String(v).length;
    else if (Array.isArray(v)) {
      chars += 1;
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    } else if (typeof v === "object" && v !== null) {
      chars += 1;
      for (const key of Object.keys(v)) {
        chars += key.length;
        stack.push((v as Record<string, unknown>)[key]);
      }
    } else if (v !== undefined) chars += 1;
  }
  return chars;
}
