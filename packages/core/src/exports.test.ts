/**
 * Every type the public declarations of `@tollgate/core` and `@tollgate/core/testing` name is
 * exported by one of them, so that users can name it too (the options of `new TollgateError`, the
 * members of `gate.policy`, the parameter of `checkRateLimitHeaders`, …).
 */
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const src = fileURLToPath(new URL('.', import.meta.url))
const ENTRIES = ['index.ts', 'testing/index.ts'].map((entry) => src + entry)

/** The nodes of a declaration that users see: not function bodies, nor private members. */
function visible(node: ts.Node): ts.Node[] {
  if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node))
    return [...(node.typeParameters ?? []), ...node.parameters.map((p) => p.type), node.type].filter(
      (n): n is ts.TypeParameterDeclaration | ts.TypeNode => n !== undefined,
    )
  if (ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node)) return node.type ? [node.type] : []
  if (ts.isClassDeclaration(node))
    return [
      ...(node.heritageClauses ?? []),
      ...node.members
        .filter(
          (member) =>
            !(ts.getCombinedModifierFlags(member as ts.Declaration) & ts.ModifierFlags.Private) &&
            !(member.name && ts.isPrivateIdentifier(member.name)),
        )
        .flatMap(visible),
    ]
  if (ts.isGetAccessor(node)) return node.type ? [node.type] : []
  return [node]
}

/** Named types the public surface refers to that no entry exports, each with where it is used. */
function unexported(): string[] {
  const program = ts.createProgram(ENTRIES, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  })
  const checker = program.getTypeChecker()
  const resolve = (symbol: ts.Symbol | undefined) =>
    symbol && symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
  const ours = (declaration: ts.Node) => declaration.getSourceFile().fileName.startsWith(src)
  const exported = new Set<ts.Symbol>()
  const surface: [string, ts.Symbol][] = []
  for (const entry of ENTRIES) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!
    for (const symbol of checker.getExportsOfModule(module)) {
      const target = resolve(symbol)!
      exported.add(target)
      surface.push([symbol.name, target])
    }
  }
  const found = new Map<string, Set<string>>()
  for (const [name, symbol] of surface)
    for (const declaration of symbol.declarations ?? []) {
      if (!ours(declaration)) continue
      const visit = (node: ts.Node): void => {
        const reference = ts.isTypeReferenceNode(node)
          ? node.typeName
          : ts.isExpressionWithTypeArguments(node)
            ? node.expression
            : ts.isTypeQueryNode(node)
              ? node.exprName
              : undefined
        const target = reference && resolve(checker.getSymbolAtLocation(reference))
        if (
          target?.declarations?.some(ours) &&
          !exported.has(target) &&
          !(target.flags & ts.SymbolFlags.TypeParameter)
        ) {
          const uses = found.get(target.name) ?? new Set<string>()
          found.set(target.name, uses.add(name))
        }
        ts.forEachChild(node, visit)
      }
      for (const node of visible(declaration)) visit(node)
    }
  return [...found].map(([type, uses]) => `${type} <- ${[...uses].join(', ')}`).sort()
}

describe('the public types', () => {
  it('name only types users can import', { timeout: 60_000 }, () => {
    expect(unexported()).toEqual([])
  })
})
