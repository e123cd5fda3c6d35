// Generated from starter/rcasd.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "rcasd", sourceHash 997bab9f7750a4e8714d67d866c28bc8be94fedc1867f3d4fa5ed8213d7fd20f
// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).
// Guards and the `apply` action are referenced by name with their params; cantbook implements them.
import { createMachine } from 'xstate';

export const machine = createMachine({
  "id": "rcasd",
  "initial": "idle",
  "context": {
    "runId": "",
    "playbookName": "",
    "sourceHash": "",
    "playbookHash": "",
    "inputs": {},
    "context": {},
    "branchOutputs": {},
    "attempts": {},
    "capCounts": {},
    "escalations": {},
    "maxIterationsDefault": 3,
    "error": null,
    "lastError": null,
    "nodeErrors": {},
    "approvals": {},
    "retryDue": {},
    "succeededBranches": {},
    "succeededNodes": {},
    "keptBranches": {},
    "keptNodes": {},
    "contractViolations": {},
    "escalationGates": {},
    "parent": null,
    "pinned": null,
    "children": {},
    "startedAt": "",
    "updatedAt": "",
    "completedAt": null,
    "version": 0,
    "epicId": null,
    "sessionId": null
  },
  "states": {
    "idle": {
      "on": {
        "RunStarted": {
          "target": "active",
          "actions": "apply"
        }
      }
    },
    "active": {
      "initial": "research",
      "on": {
        "RunFailed": {
          "target": "failed",
          "guard": {
            "type": "isInternalError"
          },
          "actions": "apply"
        },
        "RunCancelled": {
          "target": "cancelled",
          "actions": "apply"
        }
      },
      "states": {
        "research": {
          "description": "Gathers prior art, constraints and open questions for the epic.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "research"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "checking",
                  "guard": {
                    "type": "succeedsNode",
                    "params": {
                      "node": "research"
                    }
                  },
                  "actions": "apply"
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "research",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "research",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "research",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ContractViolated": {
                  "guard": {
                    "type": "violatesOnExit",
                    "params": {
                      "node": "research"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "research",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "research",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "checking": {
              "always": [
                {
                  "target": "violated",
                  "guard": {
                    "type": "exitViolated",
                    "params": {
                      "node": "research"
                    }
                  }
                },
                {
                  "target": "#rcasd.active.consensus"
                }
              ]
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "research",
                      "cause": "contract_violation"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "consensus": {
          "description": "Weighs the research findings and records the options the team agrees on.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "startsNode",
                    "params": {
                      "node": "consensus"
                    }
                  },
                  "actions": "apply"
                },
                "ContractViolated": {
                  "target": "violated",
                  "guard": {
                    "type": "violatesOnEntry",
                    "params": {
                      "node": "consensus"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "checking",
                  "guard": {
                    "type": "succeedsNode",
                    "params": {
                      "node": "consensus"
                    }
                  },
                  "actions": "apply"
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "consensus",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "consensus",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "consensus",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ContractViolated": {
                  "guard": {
                    "type": "violatesOnExit",
                    "params": {
                      "node": "consensus"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "consensus",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "consensus",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "checking": {
              "always": [
                {
                  "target": "violated",
                  "guard": {
                    "type": "exitViolated",
                    "params": {
                      "node": "consensus"
                    }
                  }
                },
                {
                  "target": "#rcasd.active.architecture"
                }
              ]
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "consensus",
                      "cause": "contract_violation"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "architecture": {
          "description": "Turns the agreed option into components, boundaries and data flow.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "startsNode",
                    "params": {
                      "node": "architecture"
                    }
                  },
                  "actions": "apply"
                },
                "ContractViolated": {
                  "target": "violated",
                  "guard": {
                    "type": "violatesOnEntry",
                    "params": {
                      "node": "architecture"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "checking",
                  "guard": {
                    "type": "succeedsNode",
                    "params": {
                      "node": "architecture"
                    }
                  },
                  "actions": "apply"
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "architecture",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "architecture",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "architecture",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ContractViolated": {
                  "guard": {
                    "type": "violatesOnExit",
                    "params": {
                      "node": "architecture"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "architecture",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "architecture",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "checking": {
              "always": [
                {
                  "target": "violated",
                  "guard": {
                    "type": "exitViolated",
                    "params": {
                      "node": "architecture"
                    }
                  }
                },
                {
                  "target": "#rcasd.active.specification"
                }
              ]
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "architecture",
                      "cause": "contract_violation"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "specification": {
          "description": "Writes the testable specification the implementation will be held to.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "startsNode",
                    "params": {
                      "node": "specification"
                    }
                  },
                  "actions": "apply"
                },
                "ContractViolated": {
                  "target": "violated",
                  "guard": {
                    "type": "violatesOnEntry",
                    "params": {
                      "node": "specification"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "checking",
                  "guard": {
                    "type": "succeedsNode",
                    "params": {
                      "node": "specification"
                    }
                  },
                  "actions": "apply"
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "specification",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "specification",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "specification",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ContractViolated": {
                  "guard": {
                    "type": "violatesOnExit",
                    "params": {
                      "node": "specification"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "specification",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "specification",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "checking": {
              "always": [
                {
                  "target": "violated",
                  "guard": {
                    "type": "exitViolated",
                    "params": {
                      "node": "specification"
                    }
                  }
                },
                {
                  "target": "#rcasd.active.decomposition"
                }
              ]
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "specification",
                      "cause": "contract_violation"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "decomposition": {
          "description": "Splits the specification into ordered, independently shippable tasks.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "startsNode",
                    "params": {
                      "node": "decomposition"
                    }
                  },
                  "actions": "apply"
                },
                "ContractViolated": {
                  "target": "violated",
                  "guard": {
                    "type": "violatesOnEntry",
                    "params": {
                      "node": "decomposition"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "checking",
                  "guard": {
                    "type": "succeedsNode",
                    "params": {
                      "node": "decomposition"
                    }
                  },
                  "actions": "apply"
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "decomposition",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "decomposition",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "decomposition",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ContractViolated": {
                  "guard": {
                    "type": "violatesOnExit",
                    "params": {
                      "node": "decomposition"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "done": {
              "on": {
                "RunCompleted": {
                  "target": "#rcasd.completed",
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "decomposition",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "decomposition",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "checking": {
              "always": [
                {
                  "target": "violated",
                  "guard": {
                    "type": "exitViolated",
                    "params": {
                      "node": "decomposition"
                    }
                  }
                },
                {
                  "target": "done"
                }
              ]
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#rcasd.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "decomposition",
                      "cause": "contract_violation"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        }
      }
    },
    "completed": {
      "type": "final"
    },
    "failed": {
      "on": {
        "RunRetried": [
          {
            "target": "#rcasd.active.research",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "research"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.consensus",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "consensus"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.architecture",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "architecture"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.specification",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "specification"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.decomposition",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "decomposition"
              }
            },
            "actions": "apply"
          }
        ]
      }
    },
    "exceeded_iteration_cap": {
      "on": {
        "RunRetried": [
          {
            "target": "#rcasd.active.research",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "research"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.consensus",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "consensus"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.architecture",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "architecture"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.specification",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "specification"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#rcasd.active.decomposition",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "decomposition"
              }
            },
            "actions": "apply"
          }
        ]
      }
    },
    "cancelled": {
      "type": "final"
    }
  }
});
