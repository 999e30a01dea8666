export declare function fatbinEntries(file: string): Array<Array<{ kind: 'elf' | 'ptx' | 'other'; sm: number }>>;
export declare function cubinArchs(file: string): number[];
