#include "textflag.h"

// func cloneWitness(flags, stack uintptr, m *witnessMem) (pid uintptr, errno syscall.Errno)
//
// clone(flags, stack, 0, 0, 0): the child starts on stack, the top of
// memory of its own that this process never uses, and runs
// witnessLoop(m), which never returns (witnessvm_linux.go). m travels in a
// register the system call keeps.
TEXT ·cloneWitness(SB),NOSPLIT|NOFRAME,$0-40
	MOVQ	flags+0(FP), DI
	MOVQ	stack+8(FP), SI
	MOVQ	m+16(FP), R12
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX	// SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$0, pid+24(FP)
	NEGQ	AX
	MOVQ	AX, errno+32(FP)
	RET
ok:
	MOVQ	AX, pid+24(FP)
	MOVQ	$0, errno+32(FP)
	RET
child:
	// witnessLoop(m), its argument at 0(SP) of this new stack.
	SUBQ	$16, SP
	MOVQ	R12, 0(SP)
	CALL	·witnessLoop(SB)
	MOVQ	$0, DI
	MOVQ	$231, AX	// SYS_exit_group
	SYSCALL
	INT	$3
